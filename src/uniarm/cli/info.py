"""`uniarm info`: load the model and every data set found, and print a compact summary.

    uniarm info [--data-root PATH] [--model SPEC] [--seed N]

A smoke test of the environment: the model loads, the data root resolves, every folder under it
parses, and the task splits come out as expected. `--model none` skips the model.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from uniarm.config import add_arguments, field, from_namespace
from uniarm.models.loading import DEFAULT_MODEL


@dataclass
class InfoConfig:
    data_root: Path | None = field(
        None, help="the shared data folder (else $UNIARM_DATA, ../shared/data)"
    )
    model: str = field(DEFAULT_MODEL, help="model spec to load, or 'none' to skip it")
    seed: int = field(0, help="seed of the task splits by prompt")


def register(subparsers) -> None:
    parser = subparsers.add_parser("info", help="summarise the model and the data sets found")
    add_arguments(parser, InfoConfig)
    parser.set_defaults(func=run)


def describe_model(spec: str) -> str:
    from uniarm.models import load_model

    model, tokenizer = load_model(spec)
    params = sum(p.numel() for p in model.parameters())
    template = "yes" if getattr(tokenizer, "chat_template", None) else "no"
    return (
        f"{spec}: {type(model).__name__}, {params / 1e6:.1f}M parameters, "
        f"vocab {len(tokenizer)}, chat template {template}"
    )


def describe_pairs(pairs) -> str:
    from uniarm.data.stats import all_objectives, objective_stats

    parts = [f"{len(pairs)} pairs, {len({p.prompt_id for p in pairs})} prompts"]
    for objective in all_objectives(pairs):
        s = objective_stats(pairs, objective)
        part = f"{objective}: winner=1 {s.winner_1 / s.labelled:.1%}"
        if s.scored:
            part += f", scores agree {s.agree}/{s.scored - s.ties} ({s.ties} ties)"
        parts.append(part)
    return "; ".join(parts)


def describe_task(task: str, root: Path, seed: int) -> str:
    from uniarm.data.tasks import TASK_SOURCES, eval_prompts, task_splits

    splits = task_splits(task, root, seed)
    counts = ", ".join(
        f"{name} {len(part)} pairs/{len({p.prompt_id for p in part})} prompts"
        for name, part in splits.items()
    )
    n_eval = len(eval_prompts(task, root, "test", seed))
    return f"{task} from {TASK_SOURCES[task]}: {counts}; {n_eval} test prompts"


def run(args: argparse.Namespace) -> int:
    from uniarm.data.registry import (
        DATASETS,
        RATED_DATASETS,
        available_datasets,
        load_dataset_by_name,
        load_rated_by_name,
    )
    from uniarm.data.root import resolve_data_root
    from uniarm.data.tasks import TASK_SOURCES

    config = from_namespace(InfoConfig, args)

    # --- model
    if config.model.lower() != "none":
        print(f"model  {describe_model(config.model)}")

    # --- data sets
    root = resolve_data_root(config.data_root)
    print(f"data   {root}")
    pair_names, rated_names = available_datasets(root)
    for name in pair_names:
        print(f"pairs  {name:30s} {describe_pairs(load_dataset_by_name(name, root))}")
    for name in rated_names:
        records = load_rated_by_name(name, root)
        mean = sum(r.score for r in records) / len(records)
        print(f"rated  {name:30s} {len(records)} texts, mean score {mean:.3f}")
    for name in [*DATASETS, *RATED_DATASETS]:
        if name not in pair_names + rated_names:
            print(f"absent {name:30s} (no folder {root / name})")

    # --- tasks
    for task, source in TASK_SOURCES.items():
        if source in pair_names:
            print(f"task   {describe_task(task, root, config.seed)}")
    return 0
