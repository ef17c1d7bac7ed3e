"""The run folder of `uniarm train`: what it holds, and how a run resumes from it.

    <run>/run.json        settings, data fingerprint, status ("running" or "finished")
    <run>/metrics.jsonl   one row per log interval (and per evaluation)
    <run>/checkpoint/     the last resumable state: arm/ and trainer.pt
    <run>/arm/            the trained ARM, once the run has finished

Every write is atomic: files through `uniarm.io`, folders by building a staging folder and
swapping it in with renames. A run killed at any point resumes from its last checkpoint to the
same result as an uninterrupted run, because everything random derives from (seed, step)
(see schedule.py) and the optimizer, scheduler, RNG and log states are saved with the weights.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from uniarm.errors import UniarmError
from uniarm.io import append_jsonl, atomic_dir, old_dir, read_jsonl, write_json, write_text

log = logging.getLogger(__name__)

RUN_FORMAT = "uniarm-train-run/1"
TRAINER_STATE = "trainer.pt"


def data_fingerprint(pairs: Sequence) -> str:
    """A short hash of the training pairs (conversations, responses and labels, in order)."""
    digest = hashlib.sha256()
    for pair in pairs:
        record = [pair.prompt_id, list(pair.responses), sorted(pair.winners.items())]
        digest.update(json.dumps(record).encode())
    return digest.hexdigest()[:16]


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


class RunFolder:
    """The output folder of one training run."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.run_file = self.path / "run.json"
        self.metrics_file = self.path / "metrics.jsonl"
        self.checkpoint = self.path / "checkpoint"
        self.arm_path = self.path / "arm"

    # -- status ------------------------------------------------------------------------------

    def read(self) -> dict[str, Any] | None:
        if not self.run_file.is_file():
            return None
        try:
            return json.loads(self.run_file.read_text())
        except json.JSONDecodeError as exc:
            raise UniarmError(
                f"{self.run_file} is not valid JSON ({exc})",
                "delete the run folder or pass --overwrite to start again",
            ) from exc

    def check(self, settings: dict, fingerprint: str, processes: int, overwrite: bool) -> str:
        """Decide what to do with the folder: `fresh`, `resume` or `finished`.

        A folder of another run (other settings or other training data) is refused, finished
        or not; `overwrite` starts again instead (`clear`). A non-empty folder that holds no
        run is refused even with `overwrite`. A run resumes only with as many
        processes as it started with, since that fixes which pairs each step sees. A finished
        run is reused however many processes ask for it.
        """
        run = self.read()
        if run is None:
            if self.path.is_dir() and any(self.path.iterdir()):
                # never cleared, even with --overwrite: it may be anything
                raise UniarmError(
                    f"the output folder {self.path} is not empty and holds no training run",
                    "pick another --output-dir (an empty or new folder)",
                )
            return "fresh"
        if overwrite:
            return "fresh"
        if run.get("format") != RUN_FORMAT:
            raise UniarmError(f"{self.run_file} is not a uniarm training run", "use --overwrite")
        status = run.get("status", "unknown")
        # NOTE: run.json records no liveness: a "running" run is one that has not finished,
        # almost always because it was interrupted (a run still training elsewhere reads alike).
        held = {"running": "an unfinished (interrupted)", "finished": "a finished"}.get(
            status, f"a {status}"
        )
        if run.get("settings") != settings:
            changed = _differences(run.get("settings", {}), settings)
            raise UniarmError(
                f"{self.path} holds {held} run with other settings: " + "; ".join(changed[:6]),
                "use the same settings to resume, another --output-dir, or --overwrite "
                "to start again",
            )
        if run.get("data") != fingerprint:
            raise UniarmError(
                f"{self.path} holds {held} run trained on other pairs (data fingerprint "
                f"{run.get('data')}, now {fingerprint})",
                "use the same data to resume, another --output-dir, or --overwrite",
            )
        if status == "finished" and self.arm_path.is_dir():
            return "finished"
        if self._checkpoint_dir() is None:
            return "fresh"
        if run.get("processes", processes) != processes:
            raise UniarmError(
                f"{self.path} was started with {run['processes']} processes, not {processes}",
                f"resume it with {run['processes']} processes, or pass --overwrite",
            )
        return "resume"

    # -- writing (main process only) ---------------------------------------------------------

    def clear(self) -> None:
        if self.path.exists():
            log.info("clearing %s (--overwrite)", self.path)
            shutil.rmtree(self.path)

    def start(self, settings: dict, fingerprint: str, **fields) -> None:
        """Record a fresh run (its settings decide later whether it may resume)."""
        self.path.mkdir(parents=True, exist_ok=True)
        run = {"format": RUN_FORMAT, "status": "running", "settings": settings, "data": fingerprint}
        write_json(self.run_file, {**run, **fields})
        self.truncate_metrics(0)

    def update(self, **fields) -> None:
        write_json(self.run_file, {**(self.read() or {}), **fields})

    def log_metrics(self, rows: list[dict]) -> None:
        append_jsonl(self.metrics_file, rows)

    def truncate_metrics(self, step: int) -> None:
        """Drop the rows logged after the checkpoint being resumed (they will be logged again)."""
        if not self.metrics_file.is_file():
            return
        rows = [r for r in read_jsonl(self.metrics_file) if r.get("step", 0) <= step]
        write_text(self.metrics_file, "".join(json.dumps(r) + "\n" for r in rows))

    def save_checkpoint(self, save_arm, trainer_state: dict) -> None:
        """Write arm/ (via `save_arm(path)`) and trainer.pt into a staging folder; swap it in."""
        with atomic_dir(self.checkpoint) as staging:
            save_arm(staging / "arm")
            torch.save(trainer_state, staging / TRAINER_STATE)
        self.update(step=trainer_state["step"])

    def finish(self, save_arm, **fields) -> None:
        save_arm(self.arm_path)  # itself an atomic folder swap
        self.update(status="finished", **fields)
        shutil.rmtree(self.checkpoint, ignore_errors=True)

    # -- reading a checkpoint ----------------------------------------------------------------

    def _checkpoint_dir(self) -> Path | None:
        """The checkpoint folder; the `.old` one when a kill fell between the two renames."""
        for candidate in (self.checkpoint, old_dir(self.checkpoint)):
            if (candidate / TRAINER_STATE).is_file() and (candidate / "arm").is_dir():
                return candidate
        return None

    def checkpoint_arm(self) -> Path:
        return self._checkpoint_dir() / "arm"

    def load_trainer_state(self) -> dict:
        return torch.load(self._checkpoint_dir() / TRAINER_STATE, weights_only=True)


# -- RNG states (saved for completeness: the training math reads none of them) --------------


def rng_state() -> dict:
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [kind, keys.tolist(), position, has_gauss, gauss],
        "python": _listify(random.getstate()),
    }


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), position, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))


def _listify(value):
    return [_listify(v) for v in value] if isinstance(value, tuple) else value
