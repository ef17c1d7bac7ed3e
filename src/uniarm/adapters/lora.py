"""GenARM's reward models: one plain LoRA ARM per objective, as named peft adapters.

GenARM (paper §5.1, Appendix C) trains an independent ARM for each objective (LoRA rank 8,
alpha 16 on q/k/v) and mixes their token rewards at decoding time. Here the members share one
copy of the frozen base model; each is a named peft adapter, switched on with `use(objective)`
before a forward.

A checkpoint is a folder with `genarm.json`

    {"format": "uniarm-genarm/1", "method": "genarm", "base_model": spec,
     "base_fingerprint": {...}, "objectives": [...], "members": {"helpful": "helpful", ...},
     "lora": {...}, "training": {...}}

and one peft adapter folder per objective (`adapter_config.json`, `adapter_model.safetensors`),
which `peft.PeftModel.from_pretrained` also reads on its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from uniarm import config as cfg
from uniarm.adapters.arm import base_fingerprint, check_objectives
from uniarm.adapters.config import DEFAULT_TARGETS
from uniarm.adapters.inject import find_targets
from uniarm.config import field
from uniarm.errors import UniarmError
from uniarm.io import atomic_dir

GENARM_FORMAT = "uniarm-genarm/1"
GENARM_MANIFEST = "genarm.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


@dataclass
class LoRASettings:
    """Shapes of one GenARM member (paper, Appendix C: rank 8, alpha 16, q/k/v)."""

    rank: int = field(8, help="LoRA rank r")
    alpha: float = field(16.0, help="LoRA alpha; the update is scaled by alpha / r")
    dropout: float = field(0.0, help="LoRA dropout (0 keeps training deterministic)")
    target_modules: tuple[str, ...] = field(DEFAULT_TARGETS, help="linear layers to adapt")

    def __post_init__(self):
        if self.rank < 1:
            raise UniarmError(f"LoRA rank must be >= 1, got {self.rank}")
        if not 0 <= self.dropout < 1:
            raise UniarmError(f"LoRA dropout must lie in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise UniarmError("no target modules given", "e.g. q_proj k_proj v_proj")
        self.target_modules = tuple(self.target_modules)

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.rank,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )


class GenARM(nn.Module):
    """Per-objective LoRA ARMs over one shared frozen base model.

    Args:
        model: a `peft.PeftModel` holding one adapter per objective, named by the objective.
        objectives: the objectives, in the order of the preference vector's weights.
        lora: the members' LoRA shapes.
        base_model: the spec the base model was loaded from, recorded in checkpoints.
    """

    method = "genarm"

    def __init__(self, model, objectives: Sequence[str], lora: LoRASettings, base_model: str):
        super().__init__()
        self.model = model
        self.objectives = tuple(objectives)
        self.lora = lora
        self.base_model = base_model
        self.active: str | None = None
        self.use(self.objectives[0])

    @classmethod
    def build(
        cls, model, objectives: Sequence[str], lora: LoRASettings, base_model: str | None = None
    ) -> GenARM:
        """Put fresh LoRA adapters (B = 0: each member starts as the base model) on `model`."""
        from peft import get_peft_model

        objectives = tuple(objectives)
        if not objectives:
            raise UniarmError("GenARM needs at least one objective")
        find_targets(model, lora.target_modules)  # a clear error before peft's own
        spec = base_model or getattr(model, "name_or_spec", None) or model.config._name_or_path
        model.requires_grad_(False)
        peft_model = get_peft_model(model, lora.peft_config(), adapter_name=objectives[0])
        for objective in objectives[1:]:
            peft_model.add_adapter(objective, lora.peft_config())
        return cls(peft_model, objectives, lora, str(spec))

    # -- members -----------------------------------------------------------------------------

    def use(self, objective: str) -> None:
        """Make `objective`'s adapter the active one for the next forwards."""
        check_objectives(self.objectives, [objective])
        if objective != self.active:
            # peft freezes the inactive adapters; the active one trains only in training mode
            self.model.set_adapter(objective, inference_mode=not self.training)
            self.active = objective

    def train(self, mode: bool = True) -> GenARM:
        super().train(mode)
        active, self.active = self.active, None
        if active is not None:
            self.use(active)
        return self

    def forward(self, *, objective: str | None = None, **model_kwargs):
        """`use(objective)` (when given), then the causal LM's forward."""
        if objective is not None:
            self.use(objective)
        return self.model(**model_kwargs)

    def adapter_state(self, objective: str | None = None) -> dict[str, torch.Tensor]:
        """One member's LoRA weights by parameter name (all members' when `objective` is None)."""
        wanted = self.objectives if objective is None else (objective,)
        check_objectives(self.objectives, wanted)
        out = {}
        for name, param in self.model.named_parameters():
            parts = name.split(".")
            if "lora_A" in parts or "lora_B" in parts:
                member = parts[parts.index("lora_A" if "lora_A" in parts else "lora_B") + 1]
                if member in wanted:
                    out[name] = param
        return out

    def trainable_parameters(self, objective: str | None = None) -> list[nn.Parameter]:
        return list(self.adapter_state(objective).values())

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    # -- checkpoints -------------------------------------------------------------------------

    def describe(self, training: dict | None = None) -> dict[str, Any]:
        return {
            "format": GENARM_FORMAT,
            "method": self.method,
            "base_model": self.base_model,
            "base_fingerprint": base_fingerprint(self.model),
            "objectives": list(self.objectives),
            "members": {o: o for o in self.objectives},
            "lora": cfg.to_dict(self.lora),
            "trainable_parameters": self.num_trainable(),
            "training": training or {},
        }

    def save(self, path: str | Path, training: dict | None = None) -> Path:
        """Write the checkpoint folder atomically (a folder swap): never a half-written one."""
        from peft.utils import get_peft_model_state_dict
        from safetensors.torch import save_file

        path = Path(path)
        with atomic_dir(path) as staging:
            for objective in self.objectives:
                folder = staging / objective
                state = get_peft_model_state_dict(self.model, adapter_name=objective)
                tensors = {k: v.detach().cpu().contiguous() for k, v in state.items()}
                folder.mkdir()
                save_file(tensors, folder / ADAPTER_WEIGHTS, metadata={"format": "pt"})
                self.model.peft_config[objective].save_pretrained(folder)
            (staging / GENARM_MANIFEST).write_text(json.dumps(self.describe(training), indent=2))
        return path

    @classmethod
    def load(
        cls,
        path: str | Path,
        device: str | torch.device = "cpu",
        model=None,
        tokenizer=None,
        objectives: Sequence[str] | None = None,
        trainable: bool = False,
    ) -> GenARM:
        """Rebuild the members (all, or `objectives`) over their base model, loaded unless given.

        `trainable` keeps the adapters trainable (to resume training); otherwise the result is
        in eval mode.
        """
        from peft import PeftModel

        meta = read_genarm_config(path)
        wanted = tuple(objectives or meta["objectives"])
        check_objectives(meta["objectives"], wanted)
        if model is None:
            from uniarm.models import load_model

            model, tokenizer = load_model(meta["base_model"], device=device)
        found = base_fingerprint(model)
        if found != meta["base_fingerprint"]:
            raise UniarmError(
                f"the GenARM checkpoint {path} was trained on another base model "
                f"({meta['base_model']}: {meta['base_fingerprint']}, given: {found})",
                "load it over the model it was trained on",
            )
        lora = cfg.build(LoRASettings, meta["lora"])
        model.requires_grad_(False)
        folders = {o: Path(path) / meta["members"][o] for o in wanted}
        first, *rest = wanted
        peft_model = PeftModel.from_pretrained(
            model, folders[first], adapter_name=first, is_trainable=trainable
        )
        for objective in rest:
            peft_model.load_adapter(folders[objective], objective, is_trainable=trainable)
        arm = cls(peft_model, wanted, lora, meta["base_model"])
        arm.training_config = meta.get("training", {})
        arm.tokenizer = tokenizer
        arm.to(device)
        return arm.train() if trainable else arm.eval()


def read_member_manifest(
    path: str | Path, manifest: str, fmt: str, what: str, fix: str
) -> dict[str, Any]:
    """The JSON manifest of a folder of per-objective peft adapters, checked member by member.

    Args:
        path: the folder.
        manifest: the manifest's file name in it.
        fmt: the `format` the manifest must declare.
        what: what such a folder is called, for the errors ("a GenARM checkpoint").
        fix: how to make one, for the error when the manifest is missing.
    """
    path = Path(path)
    meta_path = path / manifest
    if not meta_path.is_file():
        raise UniarmError(f"{path} is not {what} (no {manifest})", fix)
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != fmt:
        raise UniarmError(f"{meta_path} has format {meta.get('format')!r}, not {fmt!r}")
    for objective in meta["objectives"]:
        folder = path / meta["members"].get(objective, "")
        if (
            not (folder / "adapter_config.json").is_file()
            or not (folder / ADAPTER_WEIGHTS).is_file()
        ):
            raise UniarmError(
                f"{path}: the adapter of {objective!r} ({folder}) is not a peft adapter folder",
                "the folder may be corrupt; train it again",
            )
    return meta


def read_genarm_config(path: str | Path) -> dict[str, Any]:
    """The `genarm.json` of a checkpoint folder, with a clear error when it is not one."""
    return read_member_manifest(
        path,
        GENARM_MANIFEST,
        GENARM_FORMAT,
        "a GenARM checkpoint",
        "pass a folder written by `uniarm train --method genarm`",
    )
