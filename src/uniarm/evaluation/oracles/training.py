"""Fit a task's distilled oracle, measure it on held-out prompts, save it with its report.

Run it as `uniarm oracle train --task safety` (or `--task assistant`). The steps: load the
task's rows (recipes.py), encode them with the frozen encoder (cached by text hash), fit one
head per objective (heads.py), measure agreement on held-out prompts and the failure modes
(measure.py), and save the checkpoint folder with `report.md` beside it.

`--head finetune` replaces the frozen encoder and its ridge heads by MiniLM fine-tuned as a
cross-encoder (crossencoder.py, finetune.py); it is written to `<cache>/oracles/<task>-finetuned`
and never replaces the default oracle of a task.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from uniarm.config import field
from uniarm.errors import UniarmError
from uniarm.evaluation.oracles.distilled import DISCLAIMER, DistilledOracle
from uniarm.evaluation.oracles.encoders import EncoderSpec
from uniarm.evaluation.oracles.heads import HeadConfig, calibrate, fit_head
from uniarm.evaluation.oracles.measure import failure_modes, measure_pairs
from uniarm.evaluation.oracles.recipes import TEACHERS, load_task_data
from uniarm.objectives import get_task

log = logging.getLogger(__name__)

# The two encoders, as measured on the safety task (docs/oracles.md). The ridge penalty is
# per encoder: SmolLM2's 6,912 features want a stronger one than MiniLM's 2,688.
ENCODERS: dict[str, tuple[EncoderSpec, float]] = {
    "minilm": (EncoderSpec("minilm", tuple(range(7)), ("mean",), True, 256), 3000.0),
    "smollm2": (
        EncoderSpec("smollm2", (5, 10, 15, 20, 25, 30), ("mean", "last"), True, 320),
        10000.0,
    ),
}


HEADS = ("ridge", "finetune")


@dataclass
class OracleTrainConfig:
    """Settings of `uniarm oracle train`."""

    task: str = field("safety", help="task whose objectives the oracle scores: safety, assistant")
    head: str = field(
        "ridge",
        help="ridge: ridge heads on frozen encoder features (the default oracle); finetune: "
        "MiniLM fine-tuned as a cross-encoder (LoRA, a linear head per objective, regression + "
        "Bradley-Terry loss; about 8 CPU minutes on safety, written to "
        "<cache>/oracles/<task>-finetuned, never to the default folder)",
    )
    encoder: str = field(
        "minilm",
        help="frozen encoder: minilm (all-MiniLM-L6-v2, independent of the policy models) or "
        "smollm2 (the base model's own hidden states: closer to the 7B scores, but it shares "
        "the ARM's backbone and is about 10x slower)",
    )
    data_root: Path | None = field(None, help="the shared data folder (default: $UNIARM_DATA)")
    output_dir: Path | None = field(
        None,
        help="checkpoint folder (default: <cache>/oracles/<task>, or <task>-finetuned for "
        "--head finetune)",
    )
    alpha: float | None = field(None, help="ridge penalty (default: the encoder's own)")
    pair_weight: float = field(
        1.0,
        help="weight of the within-pair term (ridge: the difference rows; finetune: the "
        "Bradley-Terry loss)",
    )
    seed: int = field(
        0, help="seed of the task's prompt split (keep it equal to the ARM's) and of fine-tuning"
    )
    limit: int | None = field(None, help="at most this many training pairs (quick runs)")
    humor_limit: int = field(2000, help="texts drawn from each humor rating set")
    batch_size: int = field(16, help="encoder batch size")
    finetune_epochs: int = field(2, help="--head finetune: passes over the training pairs")
    finetune_lr: float = field(1e-3, help="--head finetune: learning rate of the LoRA adapters")
    finetune_lora_rank: int = field(8, help="--head finetune: LoRA rank (alpha = 2 x rank)")
    finetune_max_tokens: int = field(192, help="--head finetune: longest (prompt, response) input")
    finetune_batch_pairs: int = field(8, help="--head finetune: pairs per optimiser step")
    finetune_diff_weight: float = field(
        0.0,
        help="--head finetune: weight of an extra regression on within-pair score differences, "
        "standardised on their own scale (1.0 measured no better on validation prompts)",
    )
    overwrite: bool = field(False, help="replace an existing checkpoint")

    def __post_init__(self):
        get_task(self.task)
        if self.encoder not in ENCODERS:
            raise UniarmError(f"unknown encoder {self.encoder!r}", f"use one of {list(ENCODERS)}")
        if self.limit is not None and self.limit < 20:
            raise UniarmError(f"--limit {self.limit} is too small to fit and measure an oracle")
        if self.head not in HEADS:
            raise UniarmError(f"unknown head {self.head!r}", f"use one of {HEADS}")
        if self.head == "finetune" and (self.encoder != "minilm" or self.alpha is not None):
            raise UniarmError(
                "--head finetune fine-tunes MiniLM and has no ridge penalty",
                "drop --encoder smollm2 / --alpha, or use --head ridge",
            )
        self.finetune_settings()  # validates them

    def finetune_settings(self):
        """(ScorerShape, FinetuneConfig) of `--head finetune`."""
        from uniarm.evaluation.oracles.crossencoder import ScorerShape
        from uniarm.evaluation.oracles.finetune import FinetuneConfig

        shape = ScorerShape(
            self.finetune_max_tokens, self.finetune_lora_rank, 2.0 * self.finetune_lora_rank
        )
        train = FinetuneConfig(
            epochs=self.finetune_epochs,
            batch_pairs=self.finetune_batch_pairs,
            lr=self.finetune_lr,
            w_pair=self.pair_weight,
            w_diff=self.finetune_diff_weight,
            seed=self.seed,
        )
        return shape, train


def default_oracle_dir(task: str, head: str = "ridge") -> Path:
    """Where a task's oracle lives; a fine-tuned one has its own folder beside the default."""
    from uniarm.models import cache_root

    folder = {"ridge": task, "finetune": f"{task}-finetuned"}
    if head not in folder:
        raise UniarmError(f"unknown head {head!r}", f"use one of {HEADS}")
    return cache_root() / "oracles" / folder[head]


def feature_cache_dir() -> Path:
    from uniarm.models import cache_root

    return cache_root() / "oracle-features"


def train_oracle(config: OracleTrainConfig, cache_dir: Path | None = None):
    """Fit, measure and return the oracle of `config.task` (saving is the caller's choice).

    Returns a `DistilledOracle` (`--head ridge`) or a `FinetunedOracle` (`--head finetune`).
    """
    started = time.time()
    objectives = get_task(config.task).objectives
    cache_dir = feature_cache_dir() if cache_dir is None else cache_dir

    # --- data and the fit ---
    data = load_task_data(
        config.task, config.data_root, config.seed, config.limit, config.humor_limit
    )
    if config.head == "finetune":
        from uniarm.evaluation.oracles.finetune import fit_finetuned

        shape, settings = config.finetune_settings()
        oracle, fitted = fit_finetuned(data.train, objectives, shape, settings)
        method = settings.describe()
    else:
        oracle, fitted = _fit_ridge(config, data, objectives, cache_dir)
        method = fitted["head_config"].describe()
        fitted["head_config"] = fitted["head_config"].__dict__
    fit_s = time.time() - started

    # --- measurement on held-out prompts ---
    measured = {
        name: measure_pairs(oracle, pairs, config.batch_size)
        for name, pairs in data.heldout.items()
    }
    if data.humor_only is not None and config.head == "ridge":
        spec, head_config = oracle.spec, HeadConfig(**fitted["head_config"])
        measured["humor head fitted on the humor rating sets only"] = _humor_only(
            data, spec, head_config, cache_dir, config.batch_size
        )
    modes = failure_modes(oracle, data.heldout["heldout"], config.batch_size)

    # --- what the checkpoint records ---
    teacher = _teacher_phrase(config.task)
    if config.head == "finetune":
        name = f"finetuned-minilm (LoRA cross-encoder on {teacher})"
    else:
        name = f"distilled-{oracle.spec.backbone} (ridge on {teacher})"
    if config.head == "ridge" and oracle.spec.backbone == "smollm2":
        name += " [shares the base model's backbone]"  # its blind spots are the policy's
    heads_meta = {}
    for objective in objectives:
        held = measured["heldout"].get(objective, {})
        summary = (
            f"{method}; trained on {data.described[objective]}; held-out "
            f"agreement {held.get('agreement', float('nan')):.3f} over "
            f"{held.get('n_pairs', 0)} pairs"
        )
        heads_meta[objective] = {
            "teacher": TEACHERS[config.task][objective],
            "trained_on": data.described[objective],
            "summary": summary,
        }
    oracle.meta = {
        "name": name,
        "task": config.task,
        "head": config.head,
        "heads": heads_meta,
        **fitted,
        "training_data_sha256": data.train.sha256(),
        "n_training_texts": len(data.train),
        "split": {
            "seed": config.seed,
            "limit": config.limit,
            "train": "task train split"
            + (" minus human500 prompts" if config.task == "safety" else ""),
            "heldout": "task validation + test splits",
        },
        "measured": measured,
        "failure_modes": modes,
        "seconds": {"fit": round(fit_s, 1), "total": round(time.time() - started, 1)},
        "reproduce": reproduce_command(config),
        "disclaimer": DISCLAIMER,
    }
    oracle.name = name
    return oracle


def _fit_ridge(config: OracleTrainConfig, data, objectives, cache_dir):
    """The frozen encoder's features and one ridge head per objective."""
    spec, default_alpha = ENCODERS[config.encoder]
    head_config = HeadConfig(alpha=config.alpha or default_alpha, w_pair=config.pair_weight)
    oracle = DistilledOracle(spec, {}, {}, cache_dir)
    log.info("encoding %d training texts with %s", len(data.train), spec.describe())
    features = oracle.features(data.train.prompts, data.train.responses, config.batch_size)

    heads = {}
    for objective in objectives:
        targets = data.train.target(objective)
        teacher_rows = np.isfinite(targets) & ~np.char.startswith(
            np.array(data.train.sources), "humor_"
        )
        if objective == "humor":
            # Fit on z-scored targets (the rating sets are z-scored already), then calibrate
            # onto the humor model's own units on the scored HH rows.
            units = targets.copy()
            t = targets[teacher_rows]
            targets[teacher_rows] = (t - t.mean()) / max(t.std(), 1e-9)
        heads[objective] = fit_head(
            features, head_config, targets, data.train.pair_array(objective)
        )
        if objective == "humor":
            calibrate(heads[objective], features[teacher_rows], units[teacher_rows])
    encoder = oracle.encoder
    oracle = DistilledOracle(spec, heads, {}, cache_dir)
    oracle.encoder = encoder  # one encoder (and one count of texts encoded) for the run
    # texts_encoded: the others came from the feature cache
    return oracle, {"head_config": head_config, "texts_encoded": encoder.n_encoded}


def reproduce_command(config: OracleTrainConfig) -> str:
    """The `uniarm oracle train` command line of `config` (the settings that differ)."""
    parts = [f"uniarm oracle train --task {config.task}"]
    if config.head == "ridge":
        parts.append(f"--encoder {config.encoder}")
    else:
        parts.append("--head finetune")
    defaults = OracleTrainConfig(task=config.task, head=config.head, encoder=config.encoder)
    shown = ("alpha", "pair_weight", "seed", "limit") + tuple(
        f for f in defaults.__dict__ if f.startswith("finetune_") and config.head == "finetune"
    )
    for name in shown:
        value = getattr(config, name)
        if value != getattr(defaults, name):
            parts.append(f"--{name.replace('_', '-')} {value}")
    return " ".join(parts)


def _teacher_phrase(task: str) -> str:
    return "beaver-7b scores" if task == "safety" else "HH reward-model scores + humor ratings"


def _humor_only(data, spec, head_config, cache_dir, batch_size) -> dict:
    """Agreement of a humor head that never saw an HH response (rating sets only)."""
    rows = data.humor_only
    probe = DistilledOracle(spec, {}, {}, cache_dir)
    x = probe.features(rows.prompts, rows.responses, batch_size)
    head = fit_head(x, head_config, rows.target("humor"))
    probe = DistilledOracle(spec, {"humor": head}, {}, cache_dir)
    return measure_pairs(probe, data.heldout["heldout"], batch_size)


def save_oracle(oracle, folder: Path, overwrite: bool = False) -> Path:
    """The checkpoint and its report.md (the report is written last of the readable files)."""
    from uniarm.evaluation.oracles.report import render_report
    from uniarm.io import write_text

    oracle.save(folder, overwrite=overwrite)
    write_text(Path(folder) / "report.md", render_report(oracle))
    return Path(folder)
