"""Train a `CrossEncoderScorer` (crossencoder.py) on a task's oracle rows.

The loss fits what the oracle is measured on. Per objective:

    w_reg * MSE(s, z) + w_pair * mean softplus(-(s_winner - s_loser))
        + w_diff * MSE(s_a - s_b, z_a - z_b) / var(z_a - z_b)

where `s` is the head's standardised score, `z` the teacher's score standardised over the
training rows, the second term is the Bradley-Terry loss (the reward-model loss of METHOD.md
§1 for one objective) on the within-prompt pairs ordered by the teacher's scores, and the third
regresses the within-pair differences on their own scale. That scale matters for safety
harmlessness: the beaver cost varies about ten times more between prompts than between the
two replies to one prompt, so the plain regression term is nearly blind to what pairwise
agreement measures. Both replies of a pair sit in the same batch; rows that belong to no pair
(the humor rating sets of the assistant task) enter the regression term only.

Since the heads fit standardised scores, their calibration back to the teacher's units is the
inverse standardisation (teacher rows only), and no scoring pass over the training set is
needed after training.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from uniarm.errors import UniarmError
from uniarm.evaluation.oracles.crossencoder import CrossEncoderScorer, pad_batch
from uniarm.evaluation.oracles.recipes import Rows

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FinetuneConfig:
    """How the scorer is trained.

    Attributes:
        epochs: passes over the training pairs.
        batch_pairs: pairs (two texts each) per optimiser step.
        lr: AdamW learning rate of the LoRA adapters.
        head_lr: AdamW learning rate of the linear heads.
        weight_decay: AdamW weight decay.
        warmup: fraction of the steps with a linear warm-up; the rest decays linearly to 0.
        w_reg: weight of the regression term.
        w_pair: weight of the Bradley-Terry term.
        w_diff: weight of the regression on within-pair differences (standardised).
        seed: initialisation, dropout and batch-order seed.
        log_every: steps between two log lines.
    """

    epochs: int = 3
    batch_pairs: int = 8
    lr: float = 1e-3
    head_lr: float = 1e-3
    weight_decay: float = 0.01
    warmup: float = 0.1
    w_reg: float = 1.0
    w_pair: float = 1.0
    w_diff: float = 0.0
    seed: int = 0
    log_every: int = 20

    def __post_init__(self):
        if self.epochs < 1 or self.batch_pairs < 1 or self.log_every < 1:
            raise UniarmError(f"bad fine-tuning settings: {self}")
        if self.lr <= 0 or self.head_lr <= 0 or not 0 <= self.warmup < 1:
            raise UniarmError(f"bad fine-tuning learning rates or warm-up: {self}")
        weights = (self.w_reg, self.w_pair, self.w_diff)
        if min(weights) < 0 or sum(weights) == 0:
            raise UniarmError("fine-tuning needs a positive regression or pair weight")

    def describe(self) -> str:
        weights = (
            ("regression", self.w_reg),
            ("Bradley-Terry", self.w_pair),
            ("pair-difference regression", self.w_diff),
        )
        terms = " + ".join(f"{name} x{w:g}" for name, w in weights if w)
        return (
            f"linear head on the LoRA-tuned encoder, {terms}, "
            f"{self.epochs} epochs of {self.batch_pairs} pairs/step at lr {self.lr:g}"
        )


@dataclass
class Targets:
    """Standardised teacher scores (N, k), NaN where a row has none, and their units."""

    z: np.ndarray
    mean: np.ndarray
    std: np.ndarray


def standardise(rows: Rows, objectives: tuple[str, ...]) -> Targets:
    """z-scores over the teacher's rows; the humor rating sets are z-scored already."""
    teacher = ~np.char.startswith(np.array(rows.sources, dtype=str), "humor_")
    z = np.full((len(rows), len(objectives)), np.nan)
    mean, std = np.zeros(len(objectives)), np.ones(len(objectives))
    for k, objective in enumerate(objectives):
        y = rows.target(objective)
        own = teacher & np.isfinite(y)
        if own.sum() >= 2:
            mean[k], std[k] = y[own].mean(), max(y[own].std(), 1e-9)
        z[:, k] = np.where(teacher, (y - mean[k]) / std[k], y)
    return Targets(z, mean, std)


def units_of(rows: Rows, objectives: tuple[str, ...]) -> list[list[int]]:
    """Groups of rows that must share a batch: each labelled pair, and every other row alone."""
    parent = list(range(len(rows)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for objective in objectives:
        for a, b in rows.pair_array(objective):
            parent[find(int(a))] = find(int(b))
    groups: dict[int, list[int]] = {}
    for i in range(len(rows)):
        groups.setdefault(find(i), []).append(i)
    return list(groups.values())


def batches_of(units, lengths, batch_pairs: int, rng: np.random.Generator) -> list[list[int]]:
    """Shuffled batches of about `2 * batch_pairs` rows, units of similar length together.

    Units are shuffled, then sorted by length within windows of 16 batches, so that padding
    stays small while the batch order stays random.
    """
    size = 2 * batch_pairs
    order = rng.permutation(len(units))
    batches, current = [], []
    window = 16 * size
    longest = [max(lengths[i] for i in unit) for unit in units]
    for start in range(0, len(order), window):
        part = sorted(order[start : start + window], key=lambda u: longest[u])
        for u in part:
            current.extend(units[u])
            if len(current) >= size:
                batches.append(current)
                current = []
    if current:
        batches.append(current)
    return [batches[i] for i in rng.permutation(len(batches))]


def batch_loss(
    raw, z, pairs_by_objective, config: FinetuneConfig, diff_var=None
) -> tuple[torch.Tensor, dict]:
    """The loss of one batch (module docstring), summed over objectives.

    Args:
        raw: (B, k) standardised scores.
        z: (B, k) standardised teacher scores, NaN where none.
        pairs_by_objective: per objective, (M, 2) batch positions (winner, loser).
        config: the loss weights.
        diff_var: per objective, var(z_a - z_b) over the training pairs (None = 1).
    """
    known = torch.isfinite(z)
    reg, pair, diff = raw.new_zeros(()), raw.new_zeros(()), raw.new_zeros(())
    for k, pairs in enumerate(pairs_by_objective):
        if bool(known[:, k].any()):
            reg = reg + ((raw[known[:, k], k] - z[known[:, k], k]) ** 2).mean()
        if not len(pairs):
            continue
        margin = raw[pairs[:, 0], k] - raw[pairs[:, 1], k]
        pair = pair + nn.functional.softplus(-margin).mean()
        target = z[pairs[:, 0], k] - z[pairs[:, 1], k]
        scored = torch.isfinite(target)
        if config.w_diff and bool(scored.any()):
            scale = 1.0 if diff_var is None else float(diff_var[k])
            diff = diff + ((margin[scored] - target[scored]) ** 2).mean() / scale
    loss = config.w_reg * reg + config.w_pair * pair + config.w_diff * diff
    return loss, {"reg": reg.item(), "bt": pair.item(), "diff": diff.item()}


def pair_difference_variance(targets: Targets, pair_rows) -> np.ndarray:
    """Per objective, the variance of z_a - z_b over the scored training pairs (1 if none)."""
    out = np.ones(len(pair_rows))
    for k, pairs in enumerate(pair_rows):
        d = targets.z[pairs[:, 0], k] - targets.z[pairs[:, 1], k] if len(pairs) else []
        d = np.asarray(d)[np.isfinite(d)]
        if len(d) >= 2:
            out[k] = max(float(d.var()), 1e-6)
    return out


def finetune_scorer(
    scorer: CrossEncoderScorer,
    tokenizer,
    rows: Rows,
    objectives: tuple[str, ...],
    config: FinetuneConfig,
    spec,
    on_epoch_end: Callable[[int], None] | None = None,
) -> dict:
    """Train `scorer` in place on `rows`; returns the loss history and the time taken.

    Args:
        scorer: a scorer whose encoder carries fresh adapters (only they and the heads train).
        tokenizer: the encoder's tokenizer.
        rows: training texts with teacher scores and labelled pairs (recipes.Rows).
        objectives: the heads' objectives, in column order.
        config: the training settings.
        spec: the `EncoderSpec` whose layout (and length) the inputs use.
        on_epoch_end: called with the epoch number (1-based) after each epoch, e.g. to measure.
    """
    from uniarm.evaluation.oracles.encoders import layout_ids

    # --- set-up ---
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    targets = standardise(rows, objectives)
    ids = [layout_ids(tokenizer, spec, p, r) for p, r in zip(rows.prompts, rows.responses)]
    lengths = [len(x[0]) for x in ids]
    units = units_of(rows, objectives)
    pair_rows = [rows.pair_array(o) for o in objectives]
    diff_var = pair_difference_variance(targets, pair_rows)
    if not any(len(p) for p in pair_rows) and config.w_reg == 0:
        raise UniarmError("nothing to fine-tune on: no labelled pairs and no regression term")
    adapters = [p for n, p in scorer.encoder.named_parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(
        [
            {"params": adapters, "lr": config.lr},
            {"params": list(scorer.heads.parameters()), "lr": config.head_lr},
        ],
        weight_decay=config.weight_decay,
    )
    steps_per_epoch = len(batches_of(units, lengths, config.batch_pairs, np.random.default_rng(0)))
    total = steps_per_epoch * config.epochs
    warm = max(1, int(config.warmup * total))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimiser, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(total - warm, 1)))
    )
    pad = tokenizer.pad_token_id or 0
    z_all = torch.as_tensor(targets.z, dtype=torch.float32)
    history: list[dict] = []
    started, cpu_started = time.time(), time.process_time()
    log.info(
        "fine-tuning on %d texts (%d units), %d steps, %d trainable adapter weights; "
        "var(z_a - z_b) per objective %s",
        len(rows),
        len(units),
        total,
        sum(p.numel() for p in adapters),
        np.round(diff_var, 3).tolist(),
    )

    # --- the loop ---
    step = 0
    for epoch in range(1, config.epochs + 1):
        scorer.train()
        for batch_rows in batches_of(units, lengths, config.batch_pairs, rng):
            position = {r: j for j, r in enumerate(batch_rows)}
            pairs = [
                torch.tensor(
                    [[position[a], position[b]] for a, b in p if a in position and b in position],
                    dtype=torch.long,
                ).reshape(-1, 2)
                for p in pair_rows
            ]
            raw = scorer.raw(pad_batch([ids[r] for r in batch_rows], pad))
            loss, parts = batch_loss(raw, z_all[batch_rows], pairs, config, diff_var)
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(adapters + list(scorer.heads.parameters()), 1.0)
            optimiser.step()
            schedule.step()
            step += 1
            history.append({"step": step, "epoch": epoch, "loss": loss.item(), **parts})
            if step % config.log_every == 0 or step == total:
                _log_step(history, step, total, started, config.log_every)
        scorer.eval()
        if on_epoch_end is not None:
            on_epoch_end(epoch)

    # --- calibration: standardised heads back to the teacher's units ---
    with torch.no_grad():
        scorer.calibration.copy_(
            torch.as_tensor(np.stack([targets.std, targets.mean], 1), dtype=torch.float32)
        )
    return {
        "history": history,
        "steps": total,
        "seconds": round(time.time() - started, 1),
        "cpu_seconds": round(time.process_time() - cpu_started, 1),
    }


def fit_finetuned(rows: Rows, objectives, shape, settings: FinetuneConfig):
    """(FinetunedOracle, what its checkpoint records about the fit) for MiniLM on `rows`."""
    from dataclasses import asdict

    from uniarm.evaluation.oracles.crossencoder import FinetunedOracle, load_minilm

    tokenizer, encoder = load_minilm(shape, settings.seed)
    scorer = CrossEncoderScorer(encoder, len(objectives))
    result = finetune_scorer(scorer, tokenizer, rows, tuple(objectives), settings, shape.spec)
    losses = [h["loss"] for h in result["history"]]
    window = max(1, min(settings.log_every, len(losses)))
    training = {
        "steps": result["steps"],
        "seconds": result["seconds"],
        "cpu_seconds": result["cpu_seconds"],
        "threads": torch.get_num_threads(),
        "first_loss": round(float(np.mean(losses[:window])), 4),
        "final_loss": round(float(np.mean(losses[-window:])), 4),
    }
    oracle = FinetunedOracle(tokenizer, scorer, objectives, shape, {})
    return oracle, {"finetune": asdict(settings), "training": training}


def _log_step(history, step: int, total: int, started: float, every: int) -> None:
    recent = history[-every:]
    elapsed = time.time() - started
    per_step = elapsed / step
    log.info(
        "step %d/%d epoch %d | loss %.4f (reg %.4f, bt %.4f, diff %.4f) | %.2f s/step | eta %.0f s",
        step,
        total,
        history[-1]["epoch"],
        np.mean([h["loss"] for h in recent]),
        np.mean([h["reg"] for h in recent]),
        np.mean([h["bt"] for h in recent]),
        np.mean([h["diff"] for h in recent]),
        per_step,
        per_step * (total - step),
    )
