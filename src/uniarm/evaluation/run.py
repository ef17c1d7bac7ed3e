"""Build what a sweep needs from its settings (models, decoder, oracle) and run it.

Under a launcher every process builds its own decoder on its own device; only the main process
loads the oracle (and trains it first if it is missing), since only it scores. The ARM's
objectives are checked against the task's first, from its manifest alone, so a mismatch is
refused before any model loads or anything is written.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from uniarm.errors import UniarmError
from uniarm.evaluation.config import EvalConfig
from uniarm.evaluation.report import hypervolume_note
from uniarm.evaluation.sweep import SweepOutcome, evaluate, process_state
from uniarm.objectives import TASKS, get_task

log = logging.getLogger(__name__)


def check_arm(config: EvalConfig) -> None:
    """Refuse an ARM trained on other objectives (or another order of them) than the task's."""
    if config.arm is None:
        return
    from uniarm.decoding.loading import checkpoint_objectives

    trained = checkpoint_objectives(config.arm)
    task = get_task(config.task)
    if trained is None:
        # NOTE: a folder that names no objectives (a bare config.json) is only checked by decoding
        log.warning(
            "%s names no objectives: not checked against the %s task", config.arm, task.name
        )
        return
    if trained == task.objectives:
        return
    fits = [t.name for t in TASKS.values() if t.objectives == trained]
    order = " (in another order)" if set(trained) == set(task.objectives) else ""
    raise UniarmError(
        f"this ARM ({config.arm}) was trained on {', '.join(trained)}; the {task.name} task has "
        f"{', '.join(task.objectives)}{order}",
        f"pass --task {fits[0]}"
        if fits
        else f"pass an ARM trained on the {task.name} task (uniarm train --task {task.name})",
    )


def load_task_oracle(task: str, oracle_path: Path | None, data_root: Path | None):
    """The oracle folder given, else the task's embedded distilled oracles (trained if absent)."""
    from uniarm.evaluation.oracles import ensure_oracles, load_oracles

    if oracle_path is not None:
        return load_oracles(oracle_path)
    return ensure_oracles(task, data_root)


def make_generator(config: EvalConfig, device: str | torch.device = "cpu"):
    """A `Generate` function over a guided decoder built from the settings, on `device`."""
    from uniarm.decoding import DecodingConfig, GuidedDecoder, checkpoint_method, load_guides
    from uniarm.models import load_model

    if config.arm is not None:
        checkpoint_method(config.arm)  # a wrong path fails before any model loads
    base, tokenizer = load_model(config.base_model, device=device)
    guides = [] if config.arm is None else load_guides(config.arm, device=device)
    decoding = DecodingConfig(
        max_new_tokens=config.max_new_tokens, beta=config.beta, batch_size=config.batch_size
    )
    decoder = GuidedDecoder(base, tokenizer, guides, decoding)

    def generate(conversations, preferences):
        return [g.text for g in decoder.generate(list(conversations), preferences)]

    return generate


def run_evaluation(config: EvalConfig, oracle=None, quiet: bool = False) -> SweepOutcome:
    """One sweep of `config`, on this process and the others of its launcher, if any."""
    processes = process_state()  # first: under a launcher it may set torch's threads
    check_arm(config)
    if config.threads:
        torch.set_num_threads(config.threads)
    if processes.is_main_process:
        oracle = oracle or load_task_oracle(config.task, config.oracle, config.data_root)
    device = processes.device if processes.num_processes > 1 else config.device
    generate = make_generator(config, device)
    outcome = evaluate(config, generate, oracle, quiet=quiet, processes=processes)
    s = outcome.summary
    if processes.is_main_process:
        log.info(
            "%s on %s: HV %.4g (reference %s), MIP %.4g, oracle %s",
            s["method"],
            s["task"],
            s["hypervolume"],
            s["reference"],
            s["mean_inner_product"],
            s["oracle"],
        )
        note = hypervolume_note(s["hypervolume"], s["reference"])
        if note:
            log.warning("%s", note)
    return outcome
