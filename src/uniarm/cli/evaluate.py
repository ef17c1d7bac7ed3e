"""`uniarm evaluate`: sweep a method over the task's preference grid, score, report HV / MIP.

uniarm evaluate --task safety --arm runs/safety-uniarm-seed0/arm   # labelled by its method
uniarm evaluate --task safety                           # the base model alone (label: base)
uniarm evaluate --compare runs/eval/safety-base runs/eval/safety-uniarm --output runs/eval
    (refused for sweeps run with other prompts, replies or grids, unless --allow-mixed)

Data-parallel, one process per GPU (or CPU processes over gloo); the results equal one process's:
accelerate launch --multi_gpu --num_processes 4 -m uniarm evaluate --task safety --arm ...
torchrun --nproc_per_node 4 -m uniarm evaluate --task safety --arm ...
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from uniarm import config as cfg
from uniarm.errors import UniarmError
from uniarm.evaluation.config import EvalConfig


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="decode held-out prompts under every preference, score them, report HV and MIP",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--recipe",
        type=Path,
        help="YAML recipe: its `evaluate` section, or a file of EvalConfig settings alone",
    )
    parser.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        metavar="RESULTS",
        help="only overlay finished results folders into one plot and report",
    )
    cfg.add_bool_argument(
        parser,
        "--allow-mixed",
        default=False,
        help="with --compare: overlay sweeps run with other split, prompts, max_new_tokens, "
        "beta or grid (the report lists the differences); never other tasks or oracles",
    )
    cfg.add_arguments(parser, EvalConfig)
    parser.set_defaults(func=run)


def run(args) -> int:
    if args.compare:
        return run_compare(args)
    if args.allow_mixed:
        raise UniarmError("--allow-mixed applies to --compare only", "drop it, or add --compare")
    from uniarm.evaluation.run import run_evaluation
    from uniarm.evaluation.sweep import process_state

    config = cfg.from_namespace(EvalConfig, args, cfg.load_recipe(args.recipe, "evaluate"))
    processes = process_state()
    check_early(config, processes.num_processes)
    main = processes.is_main_process
    if not main:  # one process reports
        from transformers.utils import logging as hf_logging

        logging.getLogger().setLevel(logging.WARNING)
        hf_logging.disable_progress_bar()
    outcome = run_evaluation(config, quiet=args.quiet)
    if main:
        from uniarm.evaluation.compare import compare

        # the sweep's own plot and report, beside its results
        folder = outcome.folder
        title = f"{outcome.summary['method']} on the {config.task} task"
        if config.split != "test":  # a tuning run must not pass for a result
            title += f" ({config.split} prompts)"
        compare([folder], folder / "front.png", folder / "report.md", title, config.reference_point)
        print_summary(outcome.summary, folder)
        print(f"plot: {folder / 'front.png'}\nreport: {folder / 'report.md'}")
    return 0


def check_early(config: EvalConfig, num_processes: int) -> None:
    """The refusals the settings alone decide, before the oracle and the models load.

    A lone process checks its --device (a launcher gives each process its own). An --output
    that `uniarm.evaluation.sweep.prepare_folder` would refuse after the loading is refused here.
    """
    from uniarm.evaluation.sweep import check_folder, sweep_prompts

    if num_processes == 1:
        from uniarm.models.loading import check_device

        check_device(config.device)
    check_folder(config, len(sweep_prompts(config, warn=False)))


def run_compare(args) -> int:
    from uniarm.evaluation.compare import compare

    out = Path(args.output or "runs/eval")
    existing = [p for p in (out / "front.png", out / "report.md") if p.exists()]
    if existing and not args.overwrite:
        raise UniarmError(
            f"{existing[0]} holds an earlier comparison",
            "pick another --output, or pass --overwrite to replace it",
        )
    summaries = compare(
        args.compare,
        out / "front.png",
        out / "report.md",
        "Preference sweep",
        args.reference,
        allow_mixed=args.allow_mixed,
    )
    for s in summaries:
        print_summary(s)
    print(f"plot: {out / 'front.png'}\nreport: {out / 'report.md'}")
    return 0


def print_summary(summary: dict, folder: Path | None = None) -> None:
    from uniarm.evaluation.report import hypervolume_note

    ref = ", ".join(f"{v:g}" for v in summary["reference"])
    print(
        f"{summary.get('label', summary['method']):>16}  HV {summary['hypervolume']:9.4f}  "
        f"MIP {summary['mean_inner_product']:8.4f}  (reference {ref}; oracle: "
        f"{summary['oracle']})"
    )
    note = hypervolume_note(summary["hypervolume"], summary["reference"])
    if note:
        print(f"{'':>16}  note: {note}")
    scores = {tuple(p["scores"]) for p in summary["points"]}
    if summary.get("guided") and len(scores) == 1:
        print(
            f"{'':>16}  note: every preference gave the same mean scores: the ARM's "
            "preference conditioning changed nothing measurable (train it longer)"
        )
    if folder is not None:
        print(f"results: {folder}")
