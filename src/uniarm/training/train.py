"""`train(config)`: one ARM training run, from settings to a checkpoint folder.

The steps: load the pairs, check the run folder against the settings, load the model, build
(or reload) the ARM, then train, evaluate and save. Every check that can fail on bad input
runs before the first optimizer step, and nothing in an existing run folder is touched until
they have all passed.

    from uniarm.training import TrainConfig, train
    checkpoint = train(TrainConfig(method="uniarm", task="safety"))

`train` is reusable: on a folder that already holds a finished run of the same settings and
data it returns that run's checkpoint at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import torch

from uniarm.data.schema import PreferencePair
from uniarm.data.splits import take
from uniarm.errors import UniarmError
from uniarm.training.arms import build_arm, load_arm
from uniarm.training.batching import encode_pairs
from uniarm.training.checkpoint import RunFolder, data_fingerprint
from uniarm.training.config import TrainConfig
from uniarm.training.loop import Trainer

log = logging.getLogger(__name__)


def load_pairs(
    config: TrainConfig,
    train_pairs: Sequence[PreferencePair] | None = None,
    eval_pairs: Sequence[PreferencePair] | None = None,
) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """The training and held-out pairs: given ones, else the task's train / validation splits."""
    from uniarm.data.tasks import task_pairs

    def split(name: str, limit: int | None) -> list[PreferencePair]:
        return task_pairs(config.task, config.data_root, name, config.split_seed, limit=limit)

    if train_pairs is not None:
        train = take(train_pairs, config.num_pairs or None, config.split_seed)
    else:
        train = split("train", config.num_pairs or None)
    if eval_pairs is not None:
        held = take(eval_pairs, config.eval_pairs, config.split_seed)
    else:
        held = split("validation", config.eval_pairs) if config.eval_pairs else []
    if not train:
        raise UniarmError("no training pairs", "check the task, the data root and num_pairs")
    return train, held


@contextlib.contextmanager
def thread_count(threads: int | None):
    """torch's CPU threads set for a block, then put back: a library call leaves no trace."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_accelerator(config: TrainConfig):
    """An Accelerator for this process; several CPU-only processes (torchrun) join over gloo."""
    from accelerate import Accelerator

    # accelerate runs CPU processes data-parallel only when told to use the CPU
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    cpu = several and not torch.cuda.is_available()
    return Accelerator(mixed_precision=config.mixed_precision, cpu=cpu)


def train(
    config: TrainConfig,
    train_pairs: Sequence[PreferencePair] | None = None,
    eval_pairs: Sequence[PreferencePair] | None = None,
    overwrite: bool = False,
    on_step: Callable[[Trainer], None] | None = None,
) -> Path:
    """Train the ARM of `config` (or resume it, or reuse it) and return its checkpoint folder.

    Args:
        config: the run's settings.
        train_pairs, eval_pairs: pairs to use instead of the task's splits.
        overwrite: clear an output folder that holds another (or a finished) run.
        on_step: called as `on_step(trainer)` after every optimizer step (`trainer.step`,
            `trainer.arm`, `trainer.last_metrics`), for progress hooks and tests.
    """
    accelerator = make_accelerator(config)
    run = RunFolder(config.run_dir)

    # -- data, and what the run folder holds --------------------------------------------------
    train_raw, eval_raw = load_pairs(config, train_pairs, eval_pairs)
    fingerprint = data_fingerprint(train_raw)
    status = run.check(config.result_settings(), fingerprint, accelerator.num_processes, overwrite)
    accelerator.wait_for_everyone()  # every process has read the folder before any writes
    if status == "finished":
        log.info("%s holds a finished run of these settings; reusing it", run.path)
        return run.arm_path

    with thread_count(config.num_threads):
        trainer = prepare(config, run, status, train_raw, eval_raw, accelerator, on_step)
        if status == "fresh" and accelerator.is_main_process:
            if overwrite:
                run.clear()  # only now: every check above has passed
            run.start(
                config.result_settings(),
                fingerprint,
                processes=accelerator.num_processes,
                total_steps=trainer.total,
            )
        accelerator.wait_for_everyone()

        # -- train, evaluate, save ------------------------------------------------------------
        final_eval = trainer.fit()
        if accelerator.is_main_process:
            trainer.training_record.update(step=trainer.step, final_eval=final_eval)
            record = trainer.training_record
            run.finish(lambda path: trainer.arm.save(path, training=record), final_eval=final_eval)
            log.info("saved the trained ARM to %s", run.arm_path)
        accelerator.wait_for_everyone()
    return run.arm_path


def prepare(config, run, status, train_raw, eval_raw, accelerator, on_step) -> Trainer:
    """Load the model, tokenise the pairs, build (or reload) the ARM and its trainer."""
    from uniarm.models import load_model

    model, tokenizer = load_model(config.base_model, device=accelerator.device)
    objectives = config.task_objectives
    limits = (config.max_prompt_tokens, config.max_response_tokens)
    encoded = encode_pairs(tokenizer, train_raw, objectives, *limits)
    held_out = encode_pairs(tokenizer, eval_raw, objectives, *limits)
    if status == "resume":
        arm = load_arm(config, run.checkpoint_arm(), model, tokenizer)
    else:
        arm = build_arm(config, model, tokenizer)
    arm.to(accelerator.device)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})

    record = {**config.resolved(), "data": data_fingerprint(train_raw), "train_pairs": len(encoded)}
    trainer = Trainer(
        config, arm, encoded, held_out, tokenizer.pad_token_id, run, accelerator, record, on_step
    )
    record.update(total_steps=trainer.total, pairs_per_step=trainer.per_step)
    if status == "resume":
        trainer.load_state(run.load_trainer_state())
        if accelerator.is_main_process:
            run.truncate_metrics(trainer.step)
        log.info("resuming %s at step %d of %d", run.path, trainer.step, trainer.total)
    else:
        trainer.broadcast_parameters()
    log.info(
        "training %s (%s, %d trainable parameters) on %d %s pairs: %d steps of %d pairs, "
        "%d process(es)",
        config.method,
        type(arm).__name__,
        arm.num_trainable(),
        len(encoded),
        config.task,
        trainer.total,
        trainer.per_step,
        accelerator.num_processes,
    )
    return trainer
