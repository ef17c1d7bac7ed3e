"""A preference-conditioned autoregressive reward model: a causal LM with MoSLoRA or PBLoRA.

The ARM's reward for a response is the sum of its token log-probabilities (METHOD.md §1);
conditioned on a preference λ it serves UniARM (MoSLoRA, §3) or PARM (PBLoRA, §4).

A checkpoint is a folder with `arm.json` (base model, objectives and their descriptions,
adapter shapes, training settings) and `adapter.safetensors` (the adapter weights and the
objective embeddings), enough to rebuild the exact ARM over its base model.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from uniarm import config as cfg
from uniarm.adapters.config import AdapterConfig
from uniarm.adapters.embeddings import centered, objective_embeddings
from uniarm.adapters.inject import inject
from uniarm.adapters.moslora import MoSLoRALinear
from uniarm.adapters.pblora import PBLoRALinear
from uniarm.adapters.state import PreferenceState
from uniarm.errors import UniarmError
from uniarm.io import atomic_dir
from uniarm.objectives import describe
from uniarm.preference import as_tensor, validate_preference

ARM_FORMAT = "uniarm-arm/1"
METHOD_OF_ADAPTER = {"moslora": "uniarm", "pblora": "parm"}


def base_fingerprint(model) -> dict[str, Any]:
    """What identifies a base model: its shapes and a hash of its first embedding rows."""
    table = model.get_input_embeddings().weight.detach()
    head = table[:64].to(torch.float32).cpu().contiguous().numpy().tobytes()
    c = model.config
    return {
        "model_type": c.model_type,
        "hidden_size": c.hidden_size,
        "num_hidden_layers": c.num_hidden_layers,
        "vocab_size": table.shape[0],
        "embedding_sha256": hashlib.sha256(head).hexdigest()[:16],
    }


class PreferenceARM(nn.Module):
    """A causal LM whose target linear layers carry preference-conditioned adapters.

    Args:
        model: the causal LM; its own weights are frozen.
        tokenizer: its tokenizer (for the objective embeddings).
        objectives: objective names, in the order of the preference vector's weights.
        adapter: adapter shapes; `moslora` makes a UniARM, `pblora` a PARM.
        descriptions: the objectives' text descriptions (default: the paper's, Appendix B).
        embeddings: precomputed (k, d) objective embeddings (when loading a checkpoint).
        base_model: the spec the model was loaded from, recorded in checkpoints.
    """

    def __init__(
        self,
        model,
        tokenizer,
        objectives: Sequence[str],
        adapter: AdapterConfig,
        descriptions: Sequence[str] | None = None,
        embeddings: torch.Tensor | None = None,
        base_model: str | None = None,
    ):
        super().__init__()
        model.requires_grad_(False)
        self.model = model
        self.objectives = tuple(objectives)
        self.descriptions = tuple(descriptions or (describe(o) for o in self.objectives))
        if len(self.descriptions) != len(self.objectives):
            raise UniarmError("one description per objective is needed")
        self.adapter_config = adapter
        self.method = METHOD_OF_ADAPTER[adapter.adapter]
        self.base_model = (
            base_model
            or getattr(model, "name_or_spec", None)
            or str(getattr(model.config, "_name_or_path", ""))
        )
        if embeddings is None:
            embeddings = objective_embeddings(model, tokenizer, self.descriptions)
            if adapter.objective_embedding == "centered":
                embeddings = centered(embeddings)
        device = model.get_input_embeddings().weight.device
        self.state = PreferenceState(embeddings.to(device))
        self.layers = inject(model, adapter.target_modules, self._make_layer)
        self.merged: tuple[float, ...] | None = None
        self.merged_by_guide = False  # a decoder's guide merged it (see `merge`)

    def _make_layer(self, base: nn.Linear) -> nn.Module:
        a = self.adapter_config
        if a.adapter == "moslora":
            return MoSLoRALinear(
                base,
                self.state,
                a.rank_shared,
                a.rank_modulation,
                a.scaling,
                embed_dim=self.state.objective_embeddings.shape[1],
                shift=a.shift,
            )
        return PBLoRALinear(
            base, self.state, a.rank_shared, a.rank_modulation, a.scaling, len(self.objectives)
        )

    # -- conditioning ------------------------------------------------------------------------

    def set_preference(self, preference: Sequence[float] | torch.Tensor | None) -> None:
        """Condition later forwards on `preference`: (batch, k) rows, or one (k,) for all.

        A guide's merge is undone first; a merge of the caller's own is refused, since its
        layers would ignore the preference.
        """
        if preference is None:
            self.state.set(None)
            return
        self._refuse_own_merge("a preference set now would be ignored")
        self.state.set(as_tensor(preference, len(self.objectives)))

    def forward(self, *, preference=None, **model_kwargs):
        """`set_preference(preference)` (when given), then the causal LM's forward.

        A guide's merge is undone first, so the forward is the adapters' own; a merge of the
        caller's own is kept (and a preference refused).
        """
        self.release_guide_merge()
        if preference is not None:
            self.set_preference(preference)
        return self.model(**model_kwargs)

    def merge(self, preference: Sequence[float], by_guide: bool = False) -> None:
        """Fold the adapters into the weights for one preference: a plain forward after.

        Args:
            preference: the weights, one per objective.
            by_guide: the merge is a decoder's cache (`PreferenceGuide` keeps it between
                `generate` calls): the ARM's own methods undo it before they use the ARM,
                and `GuidedDecoder.release` undoes it. A merge of the caller's own
                (False) stays until `unmerge`.
        """
        values = validate_preference(preference, self.objectives)
        if self.merged is not None:
            self.unmerge()
        for layer in self.layers.values():
            layer.merge(values)
        self.merged = values
        self.merged_by_guide = by_guide

    def unmerge(self) -> None:
        """Restore the original weights, bit for bit (the very tensors held before `merge`)."""
        for layer in self.layers.values():
            layer.unmerge()
        self.merged = None
        self.merged_by_guide = False

    def release_guide_merge(self) -> None:
        """Undo a merge a guide made (see `merge`); a merge of the caller's own stays."""
        if self.merged_by_guide:
            self.unmerge()

    def _refuse_own_merge(self, why: str) -> None:
        self.release_guide_merge()
        if self.merged is not None:
            raise UniarmError(
                f"the ARM is merged for the preference {self.merged}: {why}", "unmerge() first"
            )

    # -- parameters --------------------------------------------------------------------------

    def adapter_state(self) -> dict[str, torch.Tensor]:
        """The adapter weights by name (every parameter that is not the frozen base's)."""
        out = {}
        for layer_name, layer in self.layers.items():
            for name, param in layer.named_parameters():
                if not name.startswith("base."):
                    out[f"{layer_name}.{name}"] = param
        return out

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.adapter_state().values())

    def num_trainable(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    # -- checkpoints -------------------------------------------------------------------------

    def describe(self, training: dict | None = None) -> dict[str, Any]:
        return {
            "format": ARM_FORMAT,
            "method": self.method,
            "base_model": self.base_model,
            "base_fingerprint": base_fingerprint(self.model),
            "objectives": list(self.objectives),
            "descriptions": list(self.descriptions),
            "adapter": cfg.to_dict(self.adapter_config),
            "trainable_parameters": self.num_trainable(),
            "training": training or {},
        }

    def save(self, path: str | Path, training: dict | None = None) -> Path:
        """Write the checkpoint folder atomically (a folder swap): never a half-written one."""
        self._refuse_own_merge("cannot save it merged")
        path = Path(path)
        with atomic_dir(path) as staging:
            tensors = {k: v.detach().cpu().contiguous() for k, v in self.adapter_state().items()}
            tensors["objective_embeddings"] = self.state.objective_embeddings.cpu().contiguous()
            save_file(tensors, staging / "adapter.safetensors")
            (staging / "arm.json").write_text(json.dumps(self.describe(training), indent=2))
        return path

    @classmethod
    def load(
        cls, path: str | Path, device: str | torch.device = "cpu", model=None, tokenizer=None
    ) -> PreferenceARM:
        """Rebuild an ARM from its checkpoint, loading its base model unless one is given."""
        meta = read_arm_config(path)
        if model is None:
            from uniarm.models import load_model

            model, tokenizer = load_model(meta["base_model"], device=device)
        found = base_fingerprint(model)
        if found != meta["base_fingerprint"]:
            raise UniarmError(
                f"the ARM checkpoint {path} was trained on another base model "
                f"({meta['base_model']}: {meta['base_fingerprint']}, given: {found})",
                "load it over the model it was trained on",
            )
        tensors = load_file(Path(path) / "adapter.safetensors")
        adapter = cfg.build(AdapterConfig, meta["adapter"])
        arm = cls(
            model,
            tokenizer,
            meta["objectives"],
            adapter,
            meta["descriptions"],
            embeddings=tensors.pop("objective_embeddings"),
            base_model=meta["base_model"],
        )
        own = arm.adapter_state()
        if set(own) != set(tensors):
            missing, extra = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
            raise UniarmError(
                f"checkpoint {path} does not fit its ARM: missing {missing[:3]}, "
                f"unexpected {extra[:3]}",
                "the checkpoint may be corrupt",
            )
        with torch.no_grad():
            for name, param in own.items():
                param.copy_(tensors[name])
        arm.training_config = meta.get("training", {})
        return arm.to(device).eval()


def read_arm_config(path: str | Path) -> dict[str, Any]:
    """The `arm.json` of a checkpoint folder, with a clear error when it is not one."""
    path = Path(path)
    meta_path = path / "arm.json"
    if not meta_path.is_file() or not (path / "adapter.safetensors").is_file():
        raise UniarmError(
            f"{path} is not an ARM checkpoint (needs arm.json and adapter.safetensors)",
            "pass a folder written by `uniarm train`",
        )
    meta = json.loads(meta_path.read_text())
    if meta.get("format") != ARM_FORMAT:
        raise UniarmError(f"{meta_path} has format {meta.get('format')!r}, not {ARM_FORMAT!r}")
    return meta


def check_objectives(arm_objectives: Sequence[str], wanted: Sequence[str]) -> None:
    """Every wanted objective must be one the ARM was trained on."""
    unknown = [o for o in wanted if o not in arm_objectives]
    if unknown:
        raise UniarmError(
            f"objective(s) {unknown} unknown to the checkpoint",
            f"it was trained on: {', '.join(arm_objectives)}",
        )
