"""A preference sweep: decode held-out prompts under every preference, score, summarise.

METHOD.md §6: for each preference vector of the task's grid, generate a reply to every test
prompt with guided decoding, score each reply with the task's oracles, and average per
objective; the points v(λ) give the hypervolume and the mean inner product.

A results folder holds one run. `eval.json` records what decides the results; a later call
with the same settings resumes (replies already in `generations.jsonl` are kept), a call with
other settings is refused unless told to move the old folder aside. Outputs:

    eval.json           the run's settings
    generations.jsonl   one reply per (prompt, preference), appended as decoding goes
    scores.jsonl        the replies with their oracle scores
    summary.json        per-preference means, HV (with its reference point), MIP, the oracle
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from uniarm.errors import UniarmError
from uniarm.evaluation.config import EvalConfig
from uniarm.evaluation.metrics import summarise_sweep
from uniarm.io import append_jsonl, read_jsonl, write_json
from uniarm.objectives import get_task
from uniarm.preference import format_preference, task_grid

log = logging.getLogger(__name__)

# Generates replies: (conversations, preferences or None) -> texts, one per row.
Generate = Callable[[Sequence, Sequence[tuple[float, ...]] | None], list]


@dataclass
class SweepOutcome:
    folder: Path
    summary: dict


def preference_key(preference: tuple[float, ...] | None) -> str:
    return "base" if preference is None else "/".join(f"{v:g}" for v in preference)


def prepare_folder(config: EvalConfig) -> Path:
    """Create or reopen the results folder; refuse one that holds another run."""
    folder = Path(config.output)
    marker = folder / "eval.json"
    identity = config.identity()
    if marker.is_file():
        found = json.loads(marker.read_text())
        if found == identity:
            return folder
        if not config.overwrite:
            changed = sorted(
                k for k in set(found) | set(identity) if found.get(k) != identity.get(k)
            )
            raise UniarmError(
                f"{folder} holds results of another run (differs in: {', '.join(changed)})",
                "pick another --output, or pass --overwrite true to move the old run aside",
            )
        aside = folder.with_name(f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(folder, aside)
        log.warning("moved the earlier run in %s to %s", folder, aside)
    elif folder.exists() and any(folder.iterdir()):
        raise UniarmError(
            f"{folder} exists and is not a results folder of `uniarm evaluate`",
            "pick another --output",
        )
    folder.mkdir(parents=True, exist_ok=True)
    write_json(marker, identity)
    return folder


def grid_for(config: EvalConfig, guided: bool) -> list[tuple[float, ...] | None]:
    k = len(get_task(config.task).objectives)
    return task_grid(k, config.edge_step, config.interior_step) if guided else [None]


def generate_missing(
    generate: Generate, prompts, grid, path: Path, prompts_per_chunk: int, quiet: bool = False
) -> list[dict]:
    """Decode every (prompt, preference) row not yet in `path`, appending as chunks finish."""
    done = {(r["prompt_id"], r["preference_key"]) for r in _rows(path)}
    todo = [p for p in prompts if any((p.prompt_id, preference_key(g)) not in done for g in grid)]
    if done and todo:
        log.info("resuming: %d of %d prompts still to decode", len(todo), len(prompts))
    bar = tqdm(total=len(todo) * len(grid), desc="decoding", unit="reply", disable=quiet)
    for start in range(0, len(todo), prompts_per_chunk):
        chunk = todo[start : start + prompts_per_chunk]
        rows = [(p, g) for p in chunk for g in grid if (p.prompt_id, preference_key(g)) not in done]
        conversations = [p.conversation for p, _ in rows]
        preferences = None if grid == [None] else [g for _, g in rows]
        texts = generate(conversations, preferences)
        append_jsonl(
            path,
            [
                {
                    "prompt_id": p.prompt_id,
                    "prompt": p.prompt,
                    "preference": None if g is None else list(g),
                    "preference_key": preference_key(g),
                    "response": text,
                }
                for (p, g), text in zip(rows, texts, strict=True)
            ],
        )
        bar.update(len(rows))
    bar.close()
    wanted = {(p.prompt_id, preference_key(g)) for p in prompts for g in grid}
    return [r for r in _rows(path) if (r["prompt_id"], r["preference_key"]) in wanted]


def _rows(path: Path) -> list[dict]:
    return read_jsonl(path) if path.is_file() else []


def score_rows(oracle, rows: list[dict], prompts, batch_size: int = 16) -> np.ndarray:
    """Oracle scores (rows, k) of the replies, each in the context of its conversation."""
    by_id = {p.prompt_id: p.conversation for p in prompts}
    conversations = [by_id[r["prompt_id"]] for r in rows]
    return oracle.score(conversations, [r["response"] for r in rows], batch_size=batch_size)


def mean_points(rows: list[dict], scores: np.ndarray, grid) -> dict[str, np.ndarray]:
    """Per preference, the mean oracle score vector over the prompts."""
    out = {}
    for g in grid:
        key = preference_key(g)
        mask = np.array([r["preference_key"] == key for r in rows])
        out[key] = scores[mask].mean(axis=0)
    return out


def summarise(config: EvalConfig, grid, means, oracle_name: str, guided: bool) -> dict:
    """HV and MIP of the sweep. The base model alone has one point; for its MIP that point
    stands at every preference of the task's grid."""
    objectives = get_task(config.task).objectives
    sweep_grid = grid if guided else grid_for(config, guided=True)
    points = {g: means[preference_key(g if guided else None)] for g in sweep_grid}
    result = summarise_sweep(config.method, points, config.reference_point)
    return {
        "method": config.method,
        "task": config.task,
        "objectives": list(objectives),
        "oracle": oracle_name,
        "num_prompts": config.num_prompts,
        "guided": guided,
        "reference": list(config.reference_point),
        "grid": [list(g) for g in sweep_grid],
        "hypervolume": result.hypervolume,
        "mean_inner_product": result.mean_inner_product,
        "points": [
            {
                "preference": None if g is None else list(g),
                "label": "base" if g is None else format_preference(g, objectives),
                "scores": means[preference_key(g)].tolist(),
            }
            for g in grid
        ],
    }


def evaluate(config: EvalConfig, generate: Generate, oracle, quiet: bool = False) -> SweepOutcome:
    """Run (or resume) one sweep with a given generator and oracle; write every output."""
    task = get_task(config.task)
    if tuple(oracle.objectives) != task.objectives:
        raise UniarmError(
            f"the oracle scores {list(oracle.objectives)}, the {task.name} task needs "
            f"{list(task.objectives)}",
            f"use an oracle trained for the {task.name} task (uniarm oracle train --task "
            f"{task.name})",
        )
    from uniarm.data import tasks as data_tasks

    folder = prepare_folder(config)
    prompts = data_tasks.eval_prompts(
        config.task,
        config.data_root,
        split="test",
        seed=config.split_seed,
        limit=config.num_prompts,
    )
    guided = config.arm is not None
    grid = grid_for(config, guided)
    rows = generate_missing(
        generate, prompts, grid, folder / "generations.jsonl", config.prompts_per_chunk, quiet
    )
    scores = score_rows(oracle, rows, prompts)
    scored = [
        {**r, "scores": dict(zip(task.objectives, s.tolist(), strict=True))}
        for r, s in zip(rows, scores, strict=True)
    ]
    _write_jsonl(folder / "scores.jsonl", scored)
    summary = summarise(config, grid, mean_points(rows, scores, grid), oracle.name, guided)
    write_json(folder / "summary.json", summary)
    return SweepOutcome(folder, summary)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    from uniarm.io import write_text

    write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
