"""Oracles: the reward models that score generated responses for evaluation (METHOD.md §6).

`load_oracles(task_or_path)` returns an `Oracle`: `.objectives` (the task's order), `.name`,
`.describe()` and `.score(prompts, responses, batch_size) -> (N, k)` with higher = better for
every objective. It takes

- a task name ("safety", "assistant"): the distilled oracle trained for it, from
  `<cache>/oracles/<task>` (train it with `uniarm oracle train --task <task>` or
  `ensure_oracles(task)`);
- a checkpoint folder written by `uniarm oracle train` (frozen encoder + ridge heads, or with
  `--head finetune` a fine-tuned MiniLM cross-encoder, e.g. `<cache>/oracles/safety-finetuned`);
- a YAML/JSON file naming one Hugging Face reward model per objective (hf_reward.py).
"""

from __future__ import annotations

import logging
from pathlib import Path

from uniarm.errors import UniarmError
from uniarm.evaluation.oracles.base import Oracle, StackedOracle

log = logging.getLogger(__name__)

__all__ = ["Oracle", "StackedOracle", "ensure_oracles", "load_oracles"]


def load_oracles(task_or_path: str | Path, device: str = "cpu") -> Oracle:
    """The oracle of a task, a checkpoint folder, or a reward-model spec file (see above)."""
    from uniarm.objectives import TASKS

    target = Path(task_or_path).expanduser()
    if str(task_or_path) in TASKS and not target.exists():
        from uniarm.evaluation.oracles.training import default_oracle_dir

        folder = default_oracle_dir(str(task_or_path))
        if not (folder / "oracle.json").is_file():
            raise UniarmError(
                f"no trained oracle for the {task_or_path} task in {folder}",
                f"run `uniarm oracle train --task {task_or_path}` (a few minutes), or call "
                "ensure_oracles(task) from Python",
            )
        return _load_folder(folder, TASKS[str(task_or_path)].objectives)
    if target.is_dir():
        return _load_folder(target)
    if target.is_file():
        from uniarm.evaluation.oracles.hf_reward import load_spec_file, reward_model_oracle

        task, specs = load_spec_file(target)
        objectives = TASKS[task].objectives if task in TASKS else None
        return reward_model_oracle(specs, objectives, device=device)
    raise UniarmError(
        f"{task_or_path!r} is neither a task ({', '.join(TASKS)}), an oracle folder nor a "
        "reward-model spec file",
        "pass safety or assistant, a folder written by `uniarm oracle train`, or a YAML file",
    )


def _load_folder(folder: Path, objectives: tuple[str, ...] | None = None) -> Oracle:
    """A checkpoint folder of either kind; its oracle.json's format says which."""
    import json

    from uniarm.evaluation.oracles import crossencoder
    from uniarm.evaluation.oracles.distilled import DistilledOracle
    from uniarm.evaluation.oracles.training import feature_cache_dir

    meta_path = folder / crossencoder.META_FILE
    try:
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    except json.JSONDecodeError as exc:
        raise UniarmError(f"{meta_path} is not valid JSON: {exc}", "train it again") from exc
    if meta.get("format") == crossencoder.FORMAT:
        oracle = crossencoder.FinetunedOracle.load(folder, meta)
    else:
        oracle = DistilledOracle.load(folder, cache_dir=feature_cache_dir())
    if objectives is not None and oracle.objectives != tuple(objectives):
        raise UniarmError(
            f"the oracle in {folder} scores {oracle.objectives}, the task needs {objectives}",
            "train it again for this task with --overwrite",
        )
    return oracle


def ensure_oracles(task: str, data_root=None, **settings) -> Oracle:
    """The task's distilled oracle, trained and saved first if it is missing (minutes)."""
    from uniarm.evaluation.oracles.training import (
        OracleTrainConfig,
        default_oracle_dir,
        save_oracle,
        train_oracle,
    )

    folder = default_oracle_dir(task)
    if not (folder / "oracle.json").is_file():
        log.info("no %s oracle in %s: training one (a few minutes)", task, folder)
        config = OracleTrainConfig(task=task, data_root=data_root, **settings)
        save_oracle(train_oracle(config), folder)
    return load_oracles(task)
