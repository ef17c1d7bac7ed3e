"""Build what a sweep needs from its settings (models, decoder, oracle) and run it."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from uniarm.evaluation.config import EvalConfig
from uniarm.evaluation.sweep import SweepOutcome, evaluate

log = logging.getLogger(__name__)


def load_task_oracle(task: str, oracle_path: Path | None, data_root: Path | None):
    """The oracle folder given, else the task's embedded distilled oracles (trained if absent)."""
    from uniarm.evaluation.oracles import ensure_oracles, load_oracles

    if oracle_path is not None:
        return load_oracles(oracle_path)
    return ensure_oracles(task, data_root)


def make_generator(config: EvalConfig):
    """A `Generate` function over a guided decoder built from the settings."""
    from uniarm.decoding import DecodingConfig, GuidedDecoder, checkpoint_method, load_guides
    from uniarm.models import load_model

    if config.arm is not None:
        checkpoint_method(config.arm)  # a wrong path fails before any model loads
    base, tokenizer = load_model(config.base_model)
    guides = [] if config.arm is None else load_guides(config.arm)
    decoding = DecodingConfig(
        max_new_tokens=config.max_new_tokens, beta=config.beta, batch_size=config.batch_size
    )
    decoder = GuidedDecoder(base, tokenizer, guides, decoding)

    def generate(conversations, preferences):
        return [g.text for g in decoder.generate(list(conversations), preferences)]

    return generate


def run_evaluation(config: EvalConfig, oracle=None, quiet: bool = False) -> SweepOutcome:
    if config.threads:
        torch.set_num_threads(config.threads)
    oracle = oracle or load_task_oracle(config.task, config.oracle, config.data_root)
    outcome = evaluate(config, make_generator(config), oracle, quiet=quiet)
    s = outcome.summary
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
