"""Build what a sweep needs from its settings (models, decoder, oracle) and run it.

Under a launcher every process builds its own decoder on its own device; only the main process
loads the oracle (and trains it first if it is missing), since only it scores.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from uniarm.evaluation.config import EvalConfig
from uniarm.evaluation.sweep import SweepOutcome, evaluate, process_state

log = logging.getLogger(__name__)


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
    return outcome
