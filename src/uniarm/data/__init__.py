"""Preference data: loaders for the shared data folders and the hub, one schema, prompt splits.

Start from `load_dataset_by_name(name, root)` (every name is in `DATASETS`), or from
`task_pairs("safety", root, split="train")` and `eval_prompts("safety", root)` for a task.
`root=None` finds the data folder from $UNIARM_DATA or ../shared/data.
"""

from uniarm.data.humor import RatedText
from uniarm.data.registry import (
    DATASETS,
    RATED_DATASETS,
    available_datasets,
    load_dataset_by_name,
    load_rated_by_name,
)
from uniarm.data.root import resolve_data_root
from uniarm.data.schema import PreferencePair, Turn, render_prompt
from uniarm.data.splits import split_by_prompt, take, without_prompts
from uniarm.data.tasks import EvalPrompt, eval_prompts, task_pairs, task_splits

__all__ = [
    "DATASETS",
    "RATED_DATASETS",
    "EvalPrompt",
    "PreferencePair",
    "RatedText",
    "Turn",
    "available_datasets",
    "eval_prompts",
    "load_dataset_by_name",
    "load_rated_by_name",
    "render_prompt",
    "resolve_data_root",
    "split_by_prompt",
    "take",
    "task_pairs",
    "task_splits",
    "without_prompts",
]
