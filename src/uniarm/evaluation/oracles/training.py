"""Fit a task's distilled oracle, measure it on held-out prompts, save it with its report.

Run it as `uniarm oracle train --task safety` (or `--task assistant`). The steps: load the
task's rows (recipes.py), encode them with the frozen encoder (cached by text hash), fit one
head per objective (heads.py), measure agreement on held-out prompts and the failure modes
(measure.py), and save the checkpoint folder with `report.md` beside it.
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


@dataclass
class OracleTrainConfig:
    """Settings of `uniarm oracle train`."""

    task: str = field("safety", help="task whose objectives the oracle scores: safety, assistant")
    encoder: str = field(
        "minilm",
        help="frozen encoder: minilm (all-MiniLM-L6-v2, independent of the policy models) or "
        "smollm2 (the base model's own hidden states: closer to the 7B scores, but it shares "
        "the ARM's backbone and is about 10x slower)",
    )
    data_root: Path | None = field(None, help="the shared data folder (default: $UNIARM_DATA)")
    output_dir: Path | None = field(
        None, help="checkpoint folder (default: <cache>/oracles/<task>)"
    )
    alpha: float | None = field(None, help="ridge penalty (default: the encoder's own)")
    pair_weight: float = field(1.0, help="weight of the within-pair difference rows")
    seed: int = field(0, help="seed of the task's prompt split (keep it equal to the ARM's)")
    limit: int | None = field(None, help="at most this many training pairs (quick runs)")
    humor_limit: int = field(2000, help="texts drawn from each humor rating set")
    batch_size: int = field(16, help="encoder batch size")
    overwrite: bool = field(False, help="replace an existing checkpoint")

    def __post_init__(self):
        get_task(self.task)
        if self.encoder not in ENCODERS:
            raise UniarmError(f"unknown encoder {self.encoder!r}", f"use one of {list(ENCODERS)}")
        if self.limit is not None and self.limit < 20:
            raise UniarmError(f"--limit {self.limit} is too small to fit and measure an oracle")


def default_oracle_dir(task: str) -> Path:
    from uniarm.models import cache_root

    return cache_root() / "oracles" / task


def feature_cache_dir() -> Path:
    from uniarm.models import cache_root

    return cache_root() / "oracle-features"


def train_oracle(config: OracleTrainConfig, cache_dir: Path | None = None) -> DistilledOracle:
    """Fit, measure and return the oracle of `config.task` (saving is the caller's choice)."""
    started = time.time()
    spec, default_alpha = ENCODERS[config.encoder]
    head_config = HeadConfig(alpha=config.alpha or default_alpha, w_pair=config.pair_weight)
    objectives = get_task(config.task).objectives
    cache_dir = feature_cache_dir() if cache_dir is None else cache_dir

    # --- data and features ---
    data = load_task_data(
        config.task, config.data_root, config.seed, config.limit, config.humor_limit
    )
    oracle = DistilledOracle(spec, {}, {}, cache_dir)
    log.info("encoding %d training texts with %s", len(data.train), spec.describe())
    features = oracle.features(data.train.prompts, data.train.responses, config.batch_size)

    # --- one head per objective ---
    heads, summaries = {}, {}
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
        summaries[objective] = data.described[objective]
    encoder = oracle.encoder
    oracle = DistilledOracle(spec, heads, {}, cache_dir)
    oracle.encoder = encoder  # one encoder (and one count of texts encoded) for the run
    fit_s = time.time() - started

    # --- measurement on held-out prompts ---
    measured = {
        name: measure_pairs(oracle, pairs, config.batch_size)
        for name, pairs in data.heldout.items()
    }
    if data.humor_only is not None:
        measured["humor head fitted on the humor rating sets only"] = _humor_only(
            data, spec, head_config, cache_dir, config.batch_size
        )
    modes = failure_modes(oracle, data.heldout["heldout"], config.batch_size)

    # --- what the checkpoint records ---
    name = f"distilled-{spec.backbone} (ridge on {_teacher_phrase(config.task)})"
    if spec.backbone == "smollm2":
        name += " [shares the base model's backbone]"  # its blind spots are the policy's
    heads_meta = {}
    for objective in objectives:
        held = measured["heldout"].get(objective, {})
        summary = (
            f"{head_config.describe()}; trained on {summaries[objective]}; held-out "
            f"agreement {held.get('agreement', float('nan')):.3f} over "
            f"{held.get('n_pairs', 0)} pairs"
        )
        heads_meta[objective] = {
            "teacher": TEACHERS[config.task][objective],
            "trained_on": summaries[objective],
            "summary": summary,
        }
    oracle.meta = {
        "name": name,
        "task": config.task,
        "heads": heads_meta,
        "head_config": head_config.__dict__,
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
        "texts_encoded": encoder.n_encoded,  # the others came from the feature cache
        "disclaimer": DISCLAIMER,
    }
    oracle.name = name
    return oracle


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


def save_oracle(oracle: DistilledOracle, folder: Path, overwrite: bool = False) -> Path:
    """The checkpoint and its report.md (the report is written last of the readable files)."""
    from uniarm.evaluation.oracles.report import render_report
    from uniarm.io import write_text

    oracle.save(folder, overwrite=overwrite)
    write_text(Path(folder) / "report.md", render_report(oracle))
    return Path(folder)
