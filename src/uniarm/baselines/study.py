"""The paper comparison (§5): every method trained and evaluated under matched settings.

    run_study(StudyConfig(task="safety", scale="small"))

trains UniARM, PARM, GenARM, the two UniARM ablations, UniARM with centered objective
embeddings and the DPO policies of MOD and Rewarded Soups on the same training pairs, sweeps
each over the task's preference grid on the same held-out prompts (same split seed) with the
same decoding settings and the same oracle, for each seed of the scale, then writes the
results (`results.py`). The settings of a scale are a recipe, `recipes/compare-<scale>.yaml`:

    seeds: [0, 1, 2]
    train: {...}          # TrainConfig settings of every trained method (ARMs and policies)
    dpo: {...}            # DPOSettings of the MOD / Rewarded Soups policies
    evaluate: {...}       # EvalConfig settings of every sweep
    method_train:         # per trained method (uniarm, parm, genarm, ..., dpo): epochs, or
      genarm: {epochs: 1}  # a method's own settings (global_weight, ranks), which `train` refuses
    tasks:                # per task, the same four sections again, merged over the above
      assistant: {evaluate: {edge_step: 0.2}}

Every stage is cached in the study folder (`stages.py`): run it again to resume or to reuse.
"""

from __future__ import annotations

import functools
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from uniarm import config as cfg
from uniarm.baselines.dpo import DPOSettings
from uniarm.baselines.stages import StageManifest
from uniarm.config import field
from uniarm.errors import UniarmError
from uniarm.objectives import get_task

log = logging.getLogger(__name__)
RECIPES = Path(__file__).resolve().parents[3] / "recipes"


@dataclass(frozen=True)
class Method:
    """A compared method: how it replies, and which training stage it needs."""

    kind: str  # base, arm, mod or rs (see replies.py)
    training: str | None  # a TrainConfig method, "dpo", or None
    title: str


METHODS: dict[str, Method] = {
    "base": Method("base", None, "base model alone"),
    "uniarm": Method("arm", "uniarm", "UniARM (MoSLoRA, local + global loss)"),
    "parm": Method("arm", "parm", "PARM (PBLoRA)"),
    "genarm": Method("arm", "genarm", "GenARM (one LoRA ARM per objective)"),
    "uniarm-noglobal": Method("arm", "uniarm-noglobal", "UniARM without the global loss"),
    "uniarm-modonly": Method("arm", "uniarm-modonly", "UniARM, modulation module only"),
    "uniarm-centered": Method(
        "arm", "uniarm-centered", "UniARM, centered objective embeddings (chosen on validation)"
    ),
    "mod": Method("mod", "dpo", "MOD (DPO policies, logits mixed)"),
    "rs": Method("rs", "dpo", "Rewarded Soups (DPO policies, weights interpolated)"),
}
# Trainings that are a TrainConfig method with settings of their own (beyond METHOD.md's):
# `uniarm-centered` was chosen on validation prompts (recipes/tune-small-*.yaml,
# docs/comparison.md) and is compared on the test prompts like every other method.
TRAINING_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "uniarm-centered": ("uniarm", {"objective_embedding": "centered"}),
}
WEAK_TO_STRONG = ("uniarm", "parm", "genarm")  # the ARM methods of the paper's Table 3
SECTIONS = ("train", "dpo", "evaluate", "method_train")


@dataclass
class StudyConfig:
    """Which study to run, and where.

    Parameters:
        task: `safety` (helpful, harmless) or `assistant` (helpful, harmless, humor).
        scale: the settings profile: `tiny` (minutes, proves the pipeline), `small` (the CPU
            study, about two hours on 2 cores), `paper` (the paper's settings, for GPUs).
        recipe: a scale recipe to use instead of recipes/compare-<scale>.yaml.
        methods: the methods to compare (default: all of them).
        seeds: training seeds (default: the scale's); each method is trained once per seed.
        base_model: the backbone of every ARM and policy, and the decoding base.
        strong_base: a larger model of the same tokenizer to guide with the ARMs as well
            (weak-to-strong, paper Table 3); none: that part is skipped and said so.
        output: the study folder (default: runs/compare/<task>-<scale>).
        results_dir: where the results JSON, markdown table and plot go.
        data_root: the shared data folder.
        split_seed: seed of the train / validation / test split by prompt.
        device: where the models decode (training picks its device itself).
        threads: torch CPU threads.
        overwrite: replace earlier, different results files (they are moved aside first).
    """

    task: str = field("safety", help="safety or assistant")
    scale: Literal["tiny", "small", "paper"] = field("small", help="tiny, small or paper")
    recipe: Path | None = field(None, help="scale recipe instead of recipes/compare-<scale>.yaml")
    methods: list[str] = field([], help=f"methods to compare ({', '.join(METHODS)}; none: all)")
    seeds: list[int] = field([], help="training seeds (none: the scale's)")
    base_model: str = field("smollm2-135m-instruct", help="backbone of ARMs, policies and base")
    strong_base: str | None = field(None, help="larger base for weak-to-strong (none: skip)")
    output: Path | None = field(None, help="study folder (none: runs/compare/<task>-<scale>)")
    results_dir: Path = field(Path("bench/results"), help="folder of the results files")
    data_root: Path | None = field(None, help="shared data folder")
    split_seed: int = field(0, help="seed of the split by prompt (same for every method)")
    device: str = field("cpu", help="device of the decoding models (e.g. cuda)")
    threads: int = field(1, help="torch CPU threads")
    overwrite: bool = field(False, help="replace earlier, different results (moved aside)")

    def __post_init__(self):
        get_task(self.task)
        if self.scale not in ("tiny", "small", "paper"):
            raise UniarmError(f"unknown scale {self.scale!r}", "use tiny, small or paper")
        self.methods = list(self.methods or METHODS)
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise UniarmError(
                f"unknown method(s) {', '.join(unknown)}", f"use: {', '.join(METHODS)}"
            )
        if len(set(self.seeds)) < len(self.seeds):
            raise UniarmError(f"seeds {self.seeds} repeat a seed")
        if self.threads < 1:
            raise UniarmError(f"threads must be >= 1, got {self.threads}")
        self.recipe = None if self.recipe is None else Path(self.recipe)

    @property
    def profile(self) -> str:
        """The scale's name, or the custom recipe's file name without a `compare-` prefix."""
        if self.recipe is None:
            return self.scale
        return self.recipe.stem.removeprefix("compare-") or self.recipe.stem

    @property
    def folder(self) -> Path:
        return self.output or Path("runs") / "compare" / f"{self.task}-{self.profile}"

    @property
    def recipe_path(self) -> Path:
        return self.recipe or RECIPES / f"compare-{self.scale}.yaml"


@dataclass
class StudySettings:
    """A scale recipe resolved for one task."""

    seeds: list[int]
    train: dict[str, Any]
    dpo: dict[str, Any]
    evaluate: dict[str, Any]
    method_train: dict[str, dict[str, Any]]


def resolve_settings(study: StudyConfig) -> StudySettings:
    """The scale recipe's sections with the task's overrides merged in."""
    values = cfg.load_recipe(study.recipe_path)
    unknown = sorted(set(values) - {*SECTIONS, "seeds", "tasks"})
    if unknown:
        raise UniarmError(
            f"recipe {study.recipe_path}: unknown section(s) {', '.join(unknown)}",
            f"use: seeds, tasks, {', '.join(SECTIONS)}",
        )
    task_values = (values.get("tasks") or {}).get(study.task) or {}
    merged = {}
    for section in SECTIONS:
        merged[section] = {**(values.get(section) or {}), **(task_values.get(section) or {})}
    method_train = {}
    for method in {*merged["method_train"], *(task_values.get("method_train") or {})}:
        method_train[method] = {
            **((values.get("method_train") or {}).get(method) or {}),
            **((task_values.get("method_train") or {}).get(method) or {}),
        }
    seeds = list(study.seeds or task_values.get("seeds") or values.get("seeds") or [0])
    return StudySettings(seeds, merged["train"], merged["dpo"], merged["evaluate"], method_train)


class Study:
    """One study folder: builds each stage's settings and runs the stages in order."""

    def __init__(self, study: StudyConfig, oracle=None, quiet: bool = False):
        self.study = study
        self.settings = resolve_settings(study)
        self.quiet = quiet
        self._oracle = oracle
        self.folder = study.folder
        self._check_settings()
        self.manifest = StageManifest(self.folder, self.identity())

    # -- settings ----------------------------------------------------------------------------

    def identity(self) -> dict[str, Any]:
        """What decides the results: a study folder holds one identity only."""
        s = self.settings
        return {
            "task": self.study.task,
            "base_model": self.study.base_model,
            "split_seed": self.study.split_seed,
            "train": s.train,
            "dpo": s.dpo,
            "evaluate": s.evaluate,
            "method_train": s.method_train,
        }

    def train_config(self, training: str, seed: int):
        """The TrainConfig of one trained method (a TrainConfig method, or "dpo") and seed."""
        from uniarm.training import TrainConfig

        method, own = TRAINING_VARIANTS.get(training, (training, {}))
        values = {
            **self.settings.train,
            **own,
            **self.settings.method_train.get(training, {}),
            # the policies are LoRAs like GenARM's members; their shapes come from DPOSettings
            "method": "genarm" if training == "dpo" else method,
            "task": self.study.task,
            "base_model": self.study.base_model,
            "data_root": self.study.data_root,
            "split_seed": self.study.split_seed,
            "seed": seed,
            "num_threads": self.study.threads,
            "output_dir": self.folder / "train" / f"{training}-seed{seed}",
        }
        return cfg.build(TrainConfig, values)

    def dpo_settings(self) -> DPOSettings:
        return cfg.build(DPOSettings, self.settings.dpo)

    def eval_config(self, name: str, label: str, folder: Path | None, base_model: str):
        from uniarm.evaluation.config import EvalConfig

        values = {
            **self.settings.evaluate,
            "task": self.study.task,
            "method": label,
            "arm": folder,
            "base_model": base_model,
            "data_root": self.study.data_root,
            "split_seed": self.study.split_seed,
            "threads": self.study.threads,
            "output": self.folder / "eval" / name,
        }
        return cfg.build(EvalConfig, values)

    def _check_settings(self) -> None:
        """Build every stage's settings once, so that a bad recipe fails before any work."""
        for training in self.trainings():
            self.train_config(training, self.settings.seeds[0])
        self.dpo_settings()
        self.eval_config("check", "check", None, self.study.base_model)

    # -- the stages --------------------------------------------------------------------------

    def trainings(self) -> list[str]:
        """The training stages the chosen methods need, each once (MOD and RS share "dpo")."""
        needed = [METHODS[m].training for m in self.study.methods]
        return list(dict.fromkeys(t for t in needed if t is not None))

    @property
    def oracle(self):
        if self._oracle is None:
            from uniarm.evaluation.run import load_task_oracle

            self._oracle = load_task_oracle(self.study.task, None, self.study.data_root)
            log.info("oracle: %s", self._oracle.name)
        return self._oracle

    def run(self) -> dict[str, dict]:
        """Every stage in order (base sweep; then per seed: trainings, sweeps); their records."""
        records = {}
        if "base" in self.study.methods:
            records["eval/base"] = self.evaluate_stage("base", "base", None, None)
        for seed in self.settings.seeds:
            folders = {t: self.train_stage(t, seed) for t in self.trainings()}
            for method in self.study.methods:
                info = METHODS[method]
                if info.training is None:
                    continue
                name = f"{method}-seed{seed}"
                records[f"eval/{name}"] = self.evaluate_stage(
                    name, method, folders[info.training], seed
                )
            if self.study.strong_base:
                records.update(self.weak_to_strong_stages(seed, folders))
        return records

    def train_stage(self, training: str, seed: int) -> Path:
        name = f"train/{training}-seed{seed}"

        def work() -> dict:
            config = self.train_config(training, seed)
            if training == "dpo":
                from uniarm.baselines.dpo import train_policies

                path = train_policies(config, self.dpo_settings(), config.run_dir, quiet=self.quiet)
            else:
                from uniarm.training import train

                path = train(config)
            return {"path": str(path), "trainable_parameters": trainable_parameters(path)}

        return Path(self.manifest.run(name, work)["result"]["path"])

    def evaluate_stage(
        self, name: str, method: str, folder: Path | None, seed: int | None, base: str | None = None
    ) -> dict:
        """Sweep one trained method (or the base alone) and record its decoding speed.

        A finished sweep scored from another HV reference point than the task's present one is
        summarised again (its replies are kept, see sweep.py).
        """
        info = METHODS[method]
        base_model = base or self.study.base_model
        stage = f"eval/{name}"
        config = self.eval_config(name, name.rsplit("-seed", 1)[0], folder, base_model)
        if info.kind in ("base", "rs"):
            # one row per prompt in a batch (the base has no preference; each soup is its own
            # model): give them a full batch of prompts, as the others get of rows
            config.prompts_per_chunk = max(config.prompts_per_chunk, config.batch_size)
        done = self.manifest.done(stage)
        if done and done["result"].get("reference") != list(config.reference_point):
            self.manifest.invalidate(stage, "the task's HV reference point changed")

        def work() -> dict:
            from uniarm.baselines.replies import TimedGenerate, decoding_speed, make_replier
            from uniarm.decoding import DecodingConfig
            from uniarm.evaluation.sweep import evaluate

            decoding = DecodingConfig(
                max_new_tokens=config.max_new_tokens,
                beta=config.beta,
                batch_size=config.batch_size,
            )
            replier = functools.partial(
                make_replier, info.kind, base_model, folder, decoding, self.study.device
            )
            stats = self.folder / "eval" / f"{name}.decode.jsonl"
            outcome = evaluate(config, TimedGenerate(replier, stats), self.oracle, self.quiet)
            s = outcome.summary
            return {
                "path": str(outcome.folder),
                "method": method,
                "seed": seed,
                "base_model": base_model,
                "oracle": s["oracle"],
                "reference": s["reference"],
                "hypervolume": s["hypervolume"],
                "mean_inner_product": s["mean_inner_product"],
                "decoding": decoding_speed(stats),
            }

        record = self.manifest.run(stage, work)
        if record["result"]["base_model"] != base_model:
            raise UniarmError(
                f"stage {stage} of {self.folder} decoded with {record['result']['base_model']}, "
                f"not {base_model}",
                "keep the same --strong-base for a study folder, or pick another --output",
            )
        return record

    def weak_to_strong_stages(self, seed: int, folders: dict[str, Path]) -> dict[str, dict]:
        """The ARMs of this seed guiding the larger base (and that base alone, once)."""
        strong = self.study.strong_base
        records = {"eval/base-w2s": self.evaluate_stage("base-w2s", "base", None, None, strong)}
        for method in WEAK_TO_STRONG:
            if method in self.study.methods:
                name = f"{method}-w2s-seed{seed}"
                folder = folders[METHODS[method].training]
                records[f"eval/{name}"] = self.evaluate_stage(name, method, folder, seed, strong)
        return records


def trainable_parameters(path: str | Path) -> int | None:
    """The trainable parameter count a checkpoint or policies folder records."""
    for name in ("arm.json", "genarm.json", "policies.json"):
        meta = Path(path) / name
        if meta.is_file():
            return json.loads(meta.read_text()).get("trainable_parameters")
    return None


def run_study(study: StudyConfig, oracle=None, quiet: bool = False) -> dict:
    """Run (or resume, or reuse) every stage, then write and return the results."""
    import torch

    from uniarm.baselines.results import collect_results, write_results

    torch.set_num_threads(study.threads)
    runner = Study(study, oracle=oracle, quiet=quiet)
    runner.run()
    results = collect_results(runner)
    write_results(results, study.results_dir, results_stem(study), study.overwrite)
    return results


def results_stem(study: StudyConfig) -> str:
    """compare-<task> for the small CPU study; compare-<task>-<scale> for every other."""
    if study.recipe is None and study.scale == "small":
        return f"compare-{study.task}"
    return f"compare-{study.task}-{study.profile}"
