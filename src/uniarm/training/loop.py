"""The training loop of `uniarm train`, on `accelerate`: one command, one process or many.

`accelerate launch --multi_gpu --num_processes N -m uniarm train ...` (GPUs, one node or
several) or `torchrun --nproc_per_node N -m uniarm train ...` (CPUs, over gloo) runs the same
loop data-parallel. Each optimizer step takes E = batch_size · grad_accumulation · N pairs
(schedule.py); process r's micro-batch m is slice m·N + r of them. The adapters' gradients
are averaged across processes once per optimizer step by one flat all-reduce, done here rather
than by wrapping the model in DistributedDataParallel: the trainable part is small,
accumulation needs no `no_sync`, and GenARM's members, each used by its own forward, need no
unused-parameter bookkeeping.

A step uses one mini-batch of pairs for every objective: both responses' rewards are computed
once and each objective's labels pick the chosen one (losses.py). METHOD.md §5 draws a
separate mini-batch per objective; with the same pairs labelled per objective the two
differ only in which pairs a step sees, and one forward instead of k serves all the losses.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence

import torch

from uniarm.adapters.lora import GenARM
from uniarm.training import schedule
from uniarm.training.arms import ARM, condition, parameter_groups, rewards
from uniarm.training.batching import EncodedPair, PairLabels, TokenBatch, collate
from uniarm.training.checkpoint import RunFolder, rng_state, set_rng_state
from uniarm.training.config import TrainConfig
from uniarm.training.evaluate import pairwise_accuracy
from uniarm.training.losses import member_loss, preference_loss

log = logging.getLogger(__name__)


def micro_step(
    arm: ARM,
    config: TrainConfig,
    batch: TokenBatch,
    labels: PairLabels,
    preference: torch.Tensor,
    backward: Callable[[torch.Tensor], None],
) -> dict[str, float]:
    """Forward, loss and backward of one micro-batch; returns its metrics."""
    objectives = arm.objectives
    metrics: dict[str, float] = {}
    scale = 1.0 / config.grad_accumulation
    if isinstance(arm, GenARM):
        total = 0.0
        for index, objective in enumerate(objectives):
            condition(arm, None, objective)
            loss, accuracy = member_loss(rewards(arm, batch), labels, index, config.beta_r)
            backward(loss * scale)  # one member's graph at a time
            total += float(loss.detach())
            metrics[f"loss/{objective}"] = float(loss.detach())
            metrics[f"accuracy/{objective}"] = float(accuracy)
        metrics["loss"] = total
        return metrics

    condition(arm, preference, None)
    out = preference_loss(
        rewards(arm, batch), labels, preference, config.beta_r, config.global_loss_weight
    )
    backward(out.total * scale)
    metrics["loss"] = float(out.total.detach())
    for index, objective in enumerate(objectives):
        metrics[f"loss/{objective}"] = float(out.local[index])
        metrics[f"accuracy/{objective}"] = float(out.accuracy[index])
    if out.global_loss is not None:
        metrics["loss/global"] = float(out.global_loss)
        metrics["accuracy/global"] = float(out.global_accuracy)
    return metrics


class Trainer:
    """Runs the optimizer steps of one run, saving, logging and evaluating on the way."""

    def __init__(
        self,
        config: TrainConfig,
        arm: ARM,
        train_pairs: Sequence[EncodedPair],
        eval_pairs: Sequence[EncodedPair],
        pad_id: int,
        run: RunFolder,
        accelerator,
        training_record: dict,
        on_step: Callable[[Trainer], None] | None = None,
    ):
        self.config, self.arm, self.run, self.accelerator = config, arm, run, accelerator
        self.train_pairs, self.eval_pairs, self.pad_id = train_pairs, eval_pairs, pad_id
        self.training_record = training_record
        self.on_step = on_step
        self.world = accelerator.num_processes
        self.per_step = config.batch_size * config.grad_accumulation * self.world
        self.total = schedule.total_steps(
            len(train_pairs), self.per_step, config.epochs, config.max_steps
        )
        self.groups = parameter_groups(arm)
        self.params = [p for group in self.groups for p in group]
        self.optimizer = torch.optim.AdamW(
            [{"params": g} for g in self.groups], lr=config.lr, weight_decay=config.weight_decay
        )
        warmup = round(config.warmup_ratio * self.total)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, schedule.cosine_with_warmup(self.total, warmup)
        )
        self.step = 0
        self.last_metrics: dict[str, float] = {}  # this process's metrics of the last step
        self.pending: dict[str, float] = {}  # metric sums since the last log line
        self.pending_steps = 0

    # -- state -------------------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": rng_state(),
            "pending": dict(self.pending),
            "pending_steps": self.pending_steps,
        }

    def load_state(self, state: dict) -> None:
        self.step = state["step"]
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        self.pending, self.pending_steps = dict(state["pending"]), state["pending_steps"]

    def broadcast_parameters(self) -> None:
        """Start every process from the main process's adapter weights."""
        if self.world > 1:
            for param in self.params:
                torch.distributed.broadcast(param.data, src=0)

    # -- one optimizer step ------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        cfg, acc = self.config, self.accelerator
        indices = schedule.step_pairs(cfg.seed, self.step, len(self.train_pairs), self.per_step)
        preference = schedule.step_preference(
            cfg.seed, self.step, len(self.arm.objectives), cfg.dirichlet_p
        )
        sums: dict[str, float] = {}
        for micro in range(cfg.grad_accumulation):
            start = (micro * self.world + acc.process_index) * cfg.batch_size
            chosen = [self.train_pairs[i] for i in indices[start : start + cfg.batch_size]]
            batch, labels = collate(chosen, self.pad_id)
            batch, labels = batch.to(acc.device), labels.to(acc.device)
            with acc.autocast():
                metrics = micro_step(self.arm, cfg, batch, labels, preference, acc.backward)
            for name, value in metrics.items():
                sums[name] = sums.get(name, 0.0) + value / cfg.grad_accumulation

        sums["lr"] = self.scheduler.get_last_lr()[0]  # the lr this step uses
        self._sync_gradients()
        if cfg.max_grad_norm > 0:
            for group in self.groups:
                torch.nn.utils.clip_grad_norm_(group, cfg.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        return sums

    def _sync_gradients(self) -> None:
        if self.world == 1:
            return
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        flat = self.accelerator.reduce(torch.cat([g.reshape(-1) for g in grads]), "mean")
        offset = 0
        for param, grad in zip(self.params, grads, strict=True):
            param.grad = flat[offset : offset + grad.numel()].view_as(param).clone()
            offset += grad.numel()

    # -- the loop ----------------------------------------------------------------------------

    def fit(self) -> dict[str, float]:
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        cfg, acc = self.config, self.accelerator
        self.arm.train()
        start_step, started = self.step, time.perf_counter()
        interval_start = started
        quiet = not acc.is_main_process or os.environ.get("TQDM_DISABLE", "") not in ("", "0")
        bar = tqdm(
            total=self.total,
            initial=self.step,
            desc="train",
            unit="step",
            disable=True if quiet else None,
        )
        with logging_redirect_tqdm():
            while self.step < self.total:
                metrics = self.last_metrics = self.train_step()
                bar.update(1)
                for name, value in metrics.items():
                    self.pending[name] = self.pending.get(name, 0.0) + value
                self.pending_steps += 1
                done = self.step == self.total
                if self.step % cfg.log_interval == 0 or done:
                    now = time.perf_counter()
                    self._log(now - interval_start, now - started, self.step - start_step)
                    interval_start = now
                if cfg.eval_interval and self.step % cfg.eval_interval == 0 and not done:
                    self.evaluate()
                if cfg.save_interval and self.step % cfg.save_interval == 0 and not done:
                    self.save_checkpoint()
                if self.on_step is not None:
                    self.on_step(self)
        bar.close()
        return self.evaluate()

    def _log(self, interval_s: float, elapsed_s: float, steps_here: int) -> None:
        names = sorted(self.pending)
        values = torch.tensor([self.pending[n] / self.pending_steps for n in names])
        values = self.accelerator.reduce(values.to(self.accelerator.device), "mean").cpu()
        row = {"kind": "train", "step": self.step, **dict(zip(names, values.tolist()))}
        row["epoch"] = self.step * self.per_step / len(self.train_pairs)
        row["pairs_per_s"] = self.pending_steps * self.per_step / max(interval_s, 1e-9)
        row["elapsed_s"] = elapsed_s
        eta = (self.total - self.step) * elapsed_s / max(steps_here, 1)
        self.pending, self.pending_steps = {}, 0
        if self.accelerator.is_main_process:
            self.run.log_metrics([row])
            log.info(format_row(row, self.arm.objectives, self.total, eta))

    def evaluate(self) -> dict[str, float]:
        if not self.eval_pairs:
            return {}
        accuracy = pairwise_accuracy(
            self.arm, self.eval_pairs, self.pad_id, self.config.batch_size, self.accelerator
        )
        if self.accelerator.is_main_process:
            row = {"kind": "eval", "step": self.step, "split": "validation"}
            row.update({f"accuracy/{o}": a for o, a in accuracy.items()})
            self.run.log_metrics([row])
            shown = " | ".join(f"{o} acc {a:.3f}" for o, a in accuracy.items())
            log.info("eval step %d (%d held-out pairs): %s", self.step, len(self.eval_pairs), shown)
        return accuracy

    def save_checkpoint(self) -> None:
        if self.accelerator.is_main_process:
            record = {**self.training_record, "step": self.step}
            self.run.save_checkpoint(
                lambda path: self.arm.save(path, training=record), self.state()
            )
        self.accelerator.wait_for_everyone()


def format_row(row: dict, objectives: Sequence[str], total: int, eta_s: float) -> str:
    """One compact log line: step, loss and accuracy per objective, speed, ETA."""
    parts = [f"step {row['step']}/{total}", f"loss {row['loss']:.4f}"]
    for name in (*objectives, "global"):
        if f"loss/{name}" in row:
            parts.append(f"{name} {row[f'loss/{name}']:.4f} acc {row[f'accuracy/{name}']:.2f}")
    parts += [f"lr {row['lr']:.2e}", f"{row['pairs_per_s']:.2f} pairs/s", f"eta {_clock(eta_s)}"]
    return " | ".join(parts)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
