"""`uniarm demo`: the main job, end to end, on the embedded default model and real data.

Trains UniARM on a slice of PKU-SafeRLHF-10K, sweeps the preference grid on held-out prompts
with SmolLM2-135M-Instruct guided by it, scores the replies with the distilled oracles, and
prints HV and MIP beside the base model alone; the plot and report land in the output folder.
Every stage is cached: a second run reuses what the first finished, an interrupted one resumes.

    uniarm demo                  # about 7 minutes on a free core (plus 4 to train oracles)
    uniarm demo --quick          # the same path in a few minutes (CI)
    uniarm demo --recipe recipes/demo-paper.yaml   # the paper's settings, for a GPU
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from uniarm import config as cfg
from uniarm.config import field
from uniarm.errors import UniarmError

log = logging.getLogger(__name__)
RECIPES = Path(__file__).resolve().parents[3] / "recipes"
# A demo recipe holds one section per stage it configures, as recipes/demo.yaml.
SECTIONS = ("train", "evaluate")


@dataclass
class DemoConfig:
    """Where the demo runs and which profile it uses.

    Parameters:
        output: the demo's folder (training run, sweeps, plot and report).
        data_root: the shared data folder.
        threads: torch CPU threads (0: torch's default).
        overwrite: restart a stage whose folder holds other settings (the old one is kept
            aside by evaluation, replaced by training).
    """

    output: Path = field(Path("runs/demo"), help="the demo's folder")
    data_root: Path | None = field(None, help="shared data folder")
    threads: int = field(0, help="torch CPU threads (0: torch's default)")
    overwrite: bool = field(False, help="start again where a stage holds other settings")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="train UniARM, sweep preferences, print HV and MIP against the base model",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cfg.add_bool_argument(parser, "--quick", default=False, help="the few-minute profile (CI)")
    parser.add_argument(
        "--recipe",
        type=Path,
        help="a demo recipe: train: and evaluate: sections (default: recipes/demo.yaml)",
    )
    cfg.add_arguments(parser, DemoConfig)
    parser.set_defaults(func=run)


def run(args) -> int:
    demo = cfg.from_namespace(DemoConfig, args)
    recipe = args.recipe or RECIPES / ("demo-quick.yaml" if args.quick else "demo.yaml")
    summaries = run_demo(demo, recipe, quiet=args.quiet)
    print_result(summaries, demo.output)
    return 0


def run_demo(demo: DemoConfig, recipe: Path, quiet: bool = False) -> list[dict]:
    """Oracles, training, the base and UniARM sweeps, then the overlay plot and report."""
    import torch

    from uniarm.evaluation.compare import compare
    from uniarm.evaluation.config import EvalConfig
    from uniarm.evaluation.run import load_task_oracle, run_evaluation
    from uniarm.training import TrainConfig

    if demo.threads:
        torch.set_num_threads(demo.threads)
    train_values, eval_values = demo_recipe(recipe)
    out = Path(demo.output)
    start = time.perf_counter()

    # -- oracles -------------------------------------------------------------------------
    task = train_values.get("task", "safety")
    oracle = load_task_oracle(task, eval_values.pop("oracle", None), demo.data_root)
    log.info("oracle: %s", oracle.name)

    # -- train UniARM ----------------------------------------------------------------------
    train_config = cfg.build(
        TrainConfig,
        {**train_values, "data_root": demo.data_root, "output_dir": out / "train-uniarm"},
    )
    checkpoint = train_in_demo(train_config, demo.overwrite)
    log.info("UniARM checkpoint: %s (%.0f s so far)", checkpoint, time.perf_counter() - start)

    # -- sweeps ----------------------------------------------------------------------------
    shared = {
        **eval_values,
        "task": task,
        "data_root": demo.data_root,
        "split_seed": train_config.split_seed,
    }
    folders = []
    for method, arm in (("base", None), ("uniarm", checkpoint)):
        config = cfg.build(
            EvalConfig,
            {
                **shared,
                "method": method,
                "arm": arm,
                "output": out / f"eval-{method}",
                "overwrite": demo.overwrite,
            },
        )
        folders.append(run_evaluation(config, oracle=oracle, quiet=quiet).folder)

    # -- plot and report -------------------------------------------------------------------
    summaries = compare(
        folders, out / "front.png", out / "report.md", f"UniARM vs the base model ({task} task)"
    )
    log.info("demo finished in %.0f s", time.perf_counter() - start)
    return summaries


def demo_recipe(path: Path) -> tuple[dict, dict]:
    """The `train:` and `evaluate:` sections of a demo recipe; a flat file (a train recipe,
    say) or another section is refused, since the demo could not tell whose settings it holds."""
    values = cfg.load_recipe(path)
    unknown = sorted(set(values) - set(SECTIONS))
    if unknown or not values:
        found = f"has {', '.join(unknown)}" if unknown else "is empty"
        raise UniarmError(
            f"recipe {path} is not a demo recipe: it {found}",
            "a demo recipe has a train: section (TrainConfig settings) and an evaluate: "
            f"section (EvalConfig settings), as {RECIPES / 'demo.yaml'}",
        )
    sections = []
    for name in SECTIONS:
        section = values.get(name) or {}
        if not isinstance(section, dict):
            raise UniarmError(f"the {name}: section of recipe {path} must map setting: value")
        sections.append(section)
    return sections[0], sections[1]


def train_in_demo(config, overwrite: bool) -> Path:
    """`train`, whose refusals name the demo's flag: its folder is under --output, and
    `uniarm train`'s --output-dir is no flag of `uniarm demo`."""
    from uniarm.training import train

    try:
        return train(config, overwrite=overwrite)
    except UniarmError as exc:
        if not exc.fix or "--output-dir" not in exc.fix:
            raise
        raise UniarmError(exc.problem, exc.fix.replace("--output-dir", "--output")) from exc


def print_result(summaries: list[dict], out: Path) -> None:
    from uniarm.cli.evaluate import print_summary

    print()
    for s in summaries:
        print_summary(s)
    print(f"\nplot:   {out / 'front.png'}\nreport: {out / 'report.md'}")
