"""A preference sweep: decode held-out prompts under every preference, score, summarise.

METHOD.md §6: for each preference vector of the task's grid, generate a reply to every test
prompt with guided decoding, score each reply with the task's oracles, and average per
objective; the points v(λ) give the hypervolume and the mean inner product.

A results folder holds one run. `eval.json` records what decides the results; a later call
with the same settings resumes (replies already in `generations.jsonl` are kept), a call with
other settings is refused unless told to move the old folder aside. Outputs:

    eval.json           the run's settings
    generations.jsonl   one reply per (prompt, preference), appended as decoding goes
                        (by N processes: to generations.part-<r>.jsonl, merged after)
    scores.jsonl        the replies with their oracle scores
    summary.json        per-preference means, HV (with its reference point), MIP, the oracle

Under `torchrun` or `accelerate launch` the sweep runs data-parallel. The prompts with a reply
still missing are dealt round-robin to the N processes, whole prompts, so that a prompt's
preferences stay in one batch and share its prefill. Process r decodes its share on its own
device and appends to `generations.part-<r>.jsonl` as chunks finish, so a kill loses at most a
chunk per process. The main process alone creates the folder, merges the parts into
`generations.jsonl` in the prompts' order (before decoding too, so a rerun with any N resumes
from what every part holds), scores the replies and writes the summary; the others read it.
Greedy replies do not depend on which process decoded them: the results equal one process's.

    torchrun --nproc_per_node 4 -m uniarm evaluate --task safety --arm runs/.../arm
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from uniarm.errors import UniarmError
from uniarm.evaluation.config import EvalConfig
from uniarm.evaluation.metrics import summarise_sweep
from uniarm.io import append_jsonl, read_jsonl, write_json, write_text
from uniarm.objectives import get_task
from uniarm.preference import format_preference, task_grid

log = logging.getLogger(__name__)

# Generates replies: (conversations, preferences or None) -> texts, one per row.
Generate = Callable[[Sequence, Sequence[tuple[float, ...]] | None], list]

GENERATIONS = "generations.jsonl"
PARTS = "generations.part-*.jsonl"


@dataclass
class SweepOutcome:
    folder: Path
    summary: dict


class OneProcess:
    """A sweep run without a launcher: the part of accelerate's `PartialState` the sweep uses."""

    num_processes = 1
    process_index = 0
    is_main_process = True
    device = "cpu"  # run_evaluation uses EvalConfig.device for a lone process

    def wait_for_everyone(self) -> None:
        pass


def process_state(timeout: timedelta = timedelta(hours=2)):
    """This process's place in the sweep: accelerate's `PartialState` under a launcher
    (WORLD_SIZE > 1), each process on its own device, else `OneProcess()`.

    The others wait at a barrier while the main process loads (or trains) the oracle and scores
    every reply, which can take longer than torch.distributed's default timeout.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return OneProcess()
    import torch
    from accelerate import PartialState

    # accelerate joins CPU processes (over gloo) only when told to use the CPU
    return PartialState(cpu=not torch.cuda.is_available(), timeout=timeout)


def preference_key(preference: tuple[float, ...] | None) -> str:
    return "base" if preference is None else "/".join(f"{v:g}" for v in preference)


def row_key(row: dict) -> tuple[str, str]:
    return row["prompt_id"], row["preference_key"]


def sweep_prompts(config: EvalConfig, warn: bool = True) -> list:
    """The held-out prompts the sweep decodes: `num_prompts` of the split, or all it holds."""
    from uniarm.data import tasks as data_tasks

    prompts = data_tasks.eval_prompts(
        config.task,
        config.data_root,
        split=config.split,
        seed=config.split_seed,
        limit=config.num_prompts,
    )
    if warn and len(prompts) < config.num_prompts:
        log.warning(
            "the %s split of the %s task holds %d prompts: decoding all of them, not the %d "
            "asked for",
            config.split,
            config.task,
            len(prompts),
            config.num_prompts,
        )
    return prompts


def check_folder(config: EvalConfig, num_prompts: int) -> bool:
    """Refuse a results folder that holds another run (unless `overwrite`) or no run at all,
    reading only; True if it holds this very run, to resume.

    `num_prompts` is the count actually decoded (see `_same_run`).
    """
    folder = Path(config.output)
    marker = folder / "eval.json"
    identity = config.identity(num_prompts)
    if marker.is_file():
        try:
            found = json.loads(marker.read_text())
        except ValueError:
            found = None
        if not isinstance(found, dict):
            raise UniarmError(f"{marker} is not a sweep's eval.json", "pick another --output")
        if _same_run(found, identity, config.num_prompts):
            return True
        if not config.overwrite:
            changed = sorted(
                k for k in set(found) | set(identity) if found.get(k) != identity.get(k)
            )
            raise UniarmError(
                f"{folder} holds results of another run (differs in: {', '.join(changed)})",
                "pick another --output, or pass --overwrite to move the old run aside",
            )
    elif folder.exists() and any(folder.iterdir()):
        raise UniarmError(
            f"{folder} exists and is not a results folder of `uniarm evaluate`",
            "pick another --output",
        )
    return False


def _same_run(found: dict, identity: dict, asked: int) -> bool:
    """Whether a folder's recorded identity is this run's. When the split holds fewer prompts
    than asked, every larger request decodes the whole split, so a folder that recorded one
    of those (as sweeps did before they recorded the count decoded) holds this run too."""
    decoded, recorded = identity["num_prompts"], found.get("num_prompts")
    if found == identity:
        return True
    whole_split = decoded < asked and isinstance(recorded, int) and recorded > decoded
    return whole_split and found == {**identity, "num_prompts": recorded}


def prepare_folder(config: EvalConfig, num_prompts: int) -> Path:
    """Create or reopen the results folder of a sweep of `num_prompts` prompts (the count
    decoded), as `check_folder` decides; move another run aside when told to."""
    folder = Path(config.output)
    marker = folder / "eval.json"
    identity = config.identity(num_prompts)
    if check_folder(config, num_prompts):
        if json.loads(marker.read_text()) != identity:
            write_json(marker, identity)  # the count decoded, where the count asked was kept
        return folder
    if marker.is_file():
        aside = folder.with_name(f"{folder.name}.old-{time.strftime('%Y%m%d-%H%M%S')}")
        shutil.move(folder, aside)
        log.warning("moved the earlier run in %s to %s", folder, aside)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(marker, identity)
    return folder


def grid_for(config: EvalConfig, guided: bool) -> list[tuple[float, ...] | None]:
    k = len(get_task(config.task).objectives)
    return task_grid(k, config.edge_step, config.interior_step) if guided else [None]


def generate_missing(
    generate: Generate,
    prompts,
    grid,
    folder: Path,
    prompts_per_chunk: int,
    quiet: bool = False,
    processes=None,
) -> None:
    """Decode this process's share of the (prompt, preference) rows not yet in `folder`.

    Rows are appended as chunks finish: to `generations.jsonl` with one process, else to this
    process's part file. The stored rows must be merged first (`merge_parts`), and no process
    may append before every process has read them, or the shares would differ.
    """
    processes = processes or OneProcess()
    rank, count = processes.process_index, processes.num_processes
    main = processes.is_main_process
    done = {row_key(r) for r in _rows(folder / GENERATIONS)}
    todo = [p for p in prompts if any((p.prompt_id, preference_key(g)) not in done for g in grid)]
    if main and done and todo:
        log.info("resuming: %d of %d prompts still to decode", len(todo), len(prompts))
    if main and count > 1 and todo:
        log.info("decoding %d prompts on %d processes", len(todo), count)
    mine = todo[rank::count]
    path = folder / (GENERATIONS if count == 1 else f"generations.part-{rank}.jsonl")

    bar = tqdm(
        total=len(mine) * len(grid), desc="decoding", unit="reply", disable=quiet or not main
    )
    for start in range(0, len(mine), prompts_per_chunk):
        chunk = mine[start : start + prompts_per_chunk]
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


def merge_parts(folder: Path, prompts, grid) -> None:
    """Fold the part files into `generations.jsonl`, in the prompts' and the grid's order.

    Only the main process calls this, while no process decodes. The file is rewritten (at
    once) only if there are parts, its rows are out of order (a one-process rerun appended
    after merged parts) or its last line is torn, which an append would corrupt. A row stored
    twice (a kill between the rewrite and the removal of the parts) is kept once.
    """
    path = folder / GENERATIONS
    parts = sorted(folder.glob(PARTS))
    merged = _rows(path)
    order = {(p.prompt_id, preference_key(g)): i for i, (p, g) in enumerate(_cells(prompts, grid))}
    rows: dict[tuple[str, str], dict] = {}
    for row in merged + [r for part in parts for r in _rows(part)]:
        rows.setdefault(row_key(row), row)
    ordered = sorted(rows.values(), key=lambda r: order.get(row_key(r), len(order)))
    if parts or ordered != merged or _torn(path):
        write_text(path, "".join(json.dumps(r, default=str) + "\n" for r in ordered))
    for part in parts:
        part.unlink()


def stored_rows(folder: Path, prompts, grid) -> list[dict]:
    """The sweep's rows in `generations.jsonl`, in the file's order."""
    wanted = {(p.prompt_id, preference_key(g)) for p, g in _cells(prompts, grid)}
    return [r for r in _rows(folder / GENERATIONS) if row_key(r) in wanted]


def _cells(prompts, grid):
    return [(p, g) for p in prompts for g in grid]


def _rows(path: Path) -> list[dict]:
    return read_jsonl(path) if path.is_file() else []


def _torn(path: Path) -> bool:
    if not path.is_file() or path.stat().st_size == 0:
        return False
    with open(path, "rb") as f:
        f.seek(-1, os.SEEK_END)
        return f.read(1) != b"\n"


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


def summarise(
    config: EvalConfig, grid, means, oracle_name: str, guided: bool, num_prompts: int
) -> dict:
    """HV and MIP of the sweep over `num_prompts` prompts (the count decoded). The base model
    alone has one point; for its MIP that point stands at every preference of the task's grid."""
    objectives = get_task(config.task).objectives
    sweep_grid = grid if guided else grid_for(config, guided=True)
    points = {g: means[preference_key(g if guided else None)] for g in sweep_grid}
    result = summarise_sweep(config.method, points, config.reference_point)
    return {
        "method": config.method,
        "task": config.task,
        "objectives": list(objectives),
        "oracle": oracle_name,
        "num_prompts": num_prompts,
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


def evaluate(
    config: EvalConfig, generate: Generate, oracle, quiet: bool = False, processes=None
) -> SweepOutcome:
    """Run (or resume) one sweep with a given generator and oracle; write every output.

    Args:
        config: the sweep's settings.
        generate: this process's generator of replies.
        oracle: scores the replies; only the main process uses it (the others may pass None).
        quiet: no progress bar.
        processes: this process's place in the sweep (default: `process_state()`).
    """
    processes = processes or process_state()
    main = processes.is_main_process
    task = get_task(config.task)
    if main:
        check_oracle(oracle, task)
    prompts = sweep_prompts(config, warn=main)
    guided = config.arm is not None
    grid = grid_for(config, guided)

    # -- the folder: created, checked, moved aside and merged by the main process alone ----
    folder = Path(config.output)
    if main:
        prepare_folder(config, len(prompts))
        merge_parts(folder, prompts, grid)
    processes.wait_for_everyone()

    # -- decode: each process its share ----------------------------------------------------
    generate_missing(generate, prompts, grid, folder, config.prompts_per_chunk, quiet, processes)
    processes.wait_for_everyone()

    # -- merge and score on the main process; the others read its summary ------------------
    if main:
        merge_parts(folder, prompts, grid)
        summary = score_sweep(config, oracle, folder, prompts, grid, guided)
    processes.wait_for_everyone()
    if not main:
        summary = json.loads((folder / "summary.json").read_text())
    return SweepOutcome(folder, summary)


def check_oracle(oracle, task) -> None:
    """Refuse an oracle that does not score the task's objectives."""
    if oracle is None:
        raise UniarmError("the main process of a sweep needs an oracle", "pass one")
    if tuple(oracle.objectives) != task.objectives:
        raise UniarmError(
            f"the oracle scores {list(oracle.objectives)}, the {task.name} task needs "
            f"{list(task.objectives)}",
            f"use an oracle trained for the {task.name} task (uniarm oracle train --task "
            f"{task.name})",
        )


def score_sweep(config: EvalConfig, oracle, folder: Path, prompts, grid, guided: bool) -> dict:
    """Score the stored replies, write scores.jsonl and summary.json; return the summary."""
    objectives = get_task(config.task).objectives
    rows = stored_rows(folder, prompts, grid)
    scores = score_rows(oracle, rows, prompts)
    scored = [
        {**r, "scores": dict(zip(objectives, s.tolist(), strict=True))}
        for r, s in zip(rows, scores, strict=True)
    ]
    write_text(folder / "scores.jsonl", "".join(json.dumps(r) + "\n" for r in scored))
    means = mean_points(rows, scores, grid)
    summary = summarise(config, grid, means, oracle.name, guided, len(prompts))
    write_json(folder / "summary.json", summary)
    return summary
