"""The ARM a method trains, and the two ways the loop conditions it.

UniARM and PARM train one `PreferenceARM` conditioned on λ (MoSLoRA or PBLoRA adapters);
GenARM trains one LoRA member per objective (`GenARM`). The loop sees them through the few
functions here: build or reload, parameter groups, and rewards under a condition.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

from uniarm.adapters.arm import PreferenceARM, read_arm_config
from uniarm.adapters.lora import GenARM, read_genarm_config
from uniarm.errors import UniarmError
from uniarm.training.batching import TokenBatch
from uniarm.training.config import TrainConfig
from uniarm.training.rewards import response_logprobs

ARM = PreferenceARM | GenARM


def build_arm(config: TrainConfig, model, tokenizer) -> ARM:
    """A fresh ARM for `config.method` over `model` (its adapters initialised from the seed)."""
    settings = config.adapter_settings()
    torch.manual_seed(config.seed)
    if config.spec.adapter == "lora":
        return GenARM.build(model, config.task_objectives, settings, config.base_model)
    return PreferenceARM(
        model, tokenizer, config.task_objectives, settings, base_model=config.base_model
    )


def load_arm(config: TrainConfig, path: Path, model, tokenizer) -> ARM:
    """The ARM saved in `path`, over `model`, ready to train on (resume)."""
    if config.spec.adapter == "lora":
        read_genarm_config(path)
        return GenARM.load(path, model.device, model, tokenizer, trainable=True)
    read_arm_config(path)
    arm = PreferenceARM.load(path, device=model.device, model=model, tokenizer=tokenizer)
    return arm.train()


def save_arm(arm: ARM, path: Path, training: dict) -> Path:
    return arm.save(path, training=training)


def parameter_groups(arm: ARM) -> list[list[torch.nn.Parameter]]:
    """The trainable parameters, one group per independent ARM (gradients clip per group)."""
    if isinstance(arm, GenARM):
        return [arm.trainable_parameters(o) for o in arm.objectives]
    return [arm.trainable_parameters()]


def condition(arm: ARM, preference: torch.Tensor | Sequence[float] | None, objective: str | None):
    """Set what the next forwards score: λ for a PreferenceARM, a member for a GenARM."""
    if isinstance(arm, GenARM):
        if objective is None:
            raise UniarmError("a GenARM scores one objective at a time", "name the objective")
        arm.use(objective)
    else:
        if preference is None:
            preference = [float(o == objective) for o in arm.objectives]
        arm.set_preference(preference)


def rewards(arm: ARM, batch: TokenBatch) -> torch.Tensor:
    """(rows,) rewards r(x, y) of a batch under the ARM's current condition."""
    return response_logprobs(arm.model, batch)
