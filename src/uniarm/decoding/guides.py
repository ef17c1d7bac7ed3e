"""Guides: the reward models that steer a frozen base model, one KV cache each (METHOD.md §2).

A guide wraps one causal LM. Before a forward it is conditioned on the preference rows of the
batch, and it says which weight w/β its log-probabilities get in each row:

- `PreferenceGuide`: a UniARM (MoSLoRA) or PARM (PBLoRA) `PreferenceARM`; weight 1/β. Each
  row carries its own preference (MoSLoRA's per-row modulation, PBLoRA's per-row core mix),
  or, when a batch holds a single preference, the adapters are merged into the weights.
- `ObjectiveGuide`: one of GenARM's per-objective ARMs, a plain (e.g. LoRA) causal LM;
  weight λ_i/β.

Prefill sharing: a guide whose forward does not depend on the preference (a GenARM member, or
a merged ARM) may prefill each unique prompt once and copy its cache to every row of that
prompt. An unmerged MoSLoRA or PBLoRA ARM may not: the preference changes its k and v
projections, so its cache differs from row to row even for one prompt.

Guides hold model state (the preference set on the ARM, a merge, the active peft adapter), so
one set of guides serves one `generate` call at a time; a server batches the requests of many
users, each with its own preference, into one call instead.

Kept merges: by default a `PreferenceGuide` keeps its merge after a `generate` call, so that
the next call with the same single preference (a server's requests, an evaluation's chunks of
one preference) skips the merge; a call with another preference merges again, and a call
with several preferences unmerges for the per-row path. Merging rebuilds every adapted weight
(tens of ms on the embedded default model), unmerging swaps the originals back. The kept merge
is a cache, never seen by anyone else: the ARM's own methods (`set_preference`, its forward,
`save`, `merge`) and other guides over the same ARM undo it first, and
`GuidedDecoder.release()` undoes it explicitly. Only a raw call of `arm.model` bypasses the
ARM and sees the merged weights. `keep_merge=False` undoes the merge at the end of every call.
A merge the caller made (`arm.merge`) is used when it fits the batch and is never undone.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence

import torch
from torch import nn

from uniarm.errors import UniarmError


@functools.cache
def _cache_argument(model_class: type) -> str:
    # transformers 5 names the KV cache argument `cache`; 4.x called it `past_key_values`.
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def _hf_model(model: nn.Module) -> nn.Module:
    """The Hugging Face model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def new_cache(model: nn.Module):
    """An empty DynamicCache laid out for `model`."""
    from transformers import DynamicCache

    return DynamicCache(config=_hf_model(model).config)


def next_token_logits(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    position_ids: torch.Tensor,
    cache,
) -> torch.Tensor:
    """Run `input_ids` through `model`, extending `cache`; the last position's logits (rows, V)."""
    cache_arg = _cache_argument(type(_hf_model(model)))
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        use_cache=True,
        logits_to_keep=1,
        **{cache_arg: cache},
    )
    return out.logits[:, -1, :]


def logit_width(model: nn.Module) -> int:
    """How many next-token logits the model produces."""
    head = _hf_model(model).get_output_embeddings()
    if head is not None and getattr(head, "weight", None) is not None:
        return head.weight.shape[0]
    return _hf_model(model).config.vocab_size


def context_length(model: nn.Module) -> int | None:
    return getattr(_hf_model(model).config, "max_position_embeddings", None)


class Guide:
    """A reward model beside the base model.

    Attributes:
        model: the causal LM run at every step (its KV cache is kept by the engine).
        objectives: the objective names, in the order of the preference vector's weights.
        tokenizer: its tokenizer, for the vocabulary check against the base (None: same one).
        name: shown in logs.
    """

    def __init__(self, model: nn.Module, objectives: Sequence[str], tokenizer=None, name=""):
        self.model = model
        self.objectives = tuple(objectives)
        self.tokenizer = tokenizer
        self.name = name or type(self).__name__

    @property
    def preference_dependent(self) -> bool:
        """Whether the forward (so the prefill) depends on the row's preference."""
        return False

    def prepare(self, preferences: torch.Tensor) -> None:
        """Called once per batch with all its preference rows, before the prefill."""

    def condition(self, preferences: torch.Tensor) -> None:
        """Condition later forwards on these rows (called again when the batch rows change)."""

    def weights(self, preferences: torch.Tensor, beta: float) -> torch.Tensor:
        """The (rows,) weights w/β of this guide's log-probabilities."""
        raise NotImplementedError

    def forward(self, input_ids, attention_mask, position_ids, cache) -> torch.Tensor:
        return next_token_logits(self.model, input_ids, attention_mask, position_ids, cache)

    def finish(self) -> None:
        """Undo what `prepare` and `condition` changed on the model (end of a call)."""

    def release(self) -> None:
        """Undo what `finish` kept for the next call (see the module docstring)."""


class PreferenceGuide(Guide):
    """A UniARM or PARM reward model, conditioned per row; weight 1/β (METHOD.md §2).

    Args:
        arm: a `uniarm.adapters.PreferenceARM`.
        merge: `auto` merges the adapters when a batch holds one preference (then one plain
            forward per step); `never` always runs the per-row adapter path.
        keep_merge: keep the merge after a call, for the next call with the same preference
            (see the module docstring); False undoes it at the end of every call.

    Attributes:
        merges: how many times this guide merged the ARM.
    """

    def __init__(
        self, arm, tokenizer=None, merge: str = "auto", name: str = "", keep_merge: bool = True
    ):
        super().__init__(arm.model, arm.objectives, tokenizer, name or arm.method)
        self.arm = arm
        self.merge = merge
        self.keep_merge = keep_merge
        self.merges = 0

    @property
    def preference_dependent(self) -> bool:
        return self.arm.merged is None

    def prepare(self, preferences: torch.Tensor) -> None:
        unique = torch.unique(preferences, dim=0)
        single = tuple(round(float(v), 6) for v in unique[0]) if len(unique) == 1 else None
        merged = self.arm.merged
        fits = merged is not None and single is not None and _close(merged, single)
        if merged is not None and not self.arm.merged_by_guide:
            if fits:
                return  # merged by the caller for exactly this preference
            raise UniarmError(
                f"the ARM is merged for the preference {merged}, but the batch asks "
                "for another one",
                "call arm.unmerge() before decoding, or decode that preference only",
            )
        if single is not None and self.merge == "auto":
            if not fits:  # a guide's merge (this one's or another's) for this preference stays
                self.arm.merge(single, by_guide=True)
                self.merges += 1
        else:
            self.arm.release_guide_merge()

    def condition(self, preferences: torch.Tensor) -> None:
        if self.arm.merged is None:
            self.arm.set_preference(preferences)

    def weights(self, preferences: torch.Tensor, beta: float) -> torch.Tensor:
        return torch.full((preferences.shape[0],), 1.0 / beta)

    def finish(self) -> None:
        if not self.keep_merge:
            self.arm.release_guide_merge()
        if self.arm.merged is None:
            self.arm.set_preference(None)

    def release(self) -> None:
        self.arm.release_guide_merge()


class ObjectiveGuide(Guide):
    """GenARM: the reward model of one objective, weighted λ_i/β in each row (METHOD.md §2).

    Args:
        model: a causal LM (a peft LoRA model, or any HF causal LM).
        objectives: all objectives of the preference vector.
        objective: the one this model rewards.
        adapter_name: with several peft adapters on one model, the adapter to activate before
            each forward (the members then share one copy of the ARM's base weights).
        activate: called before each forward instead (e.g. `GenARM.use` for this objective).
    """

    def __init__(
        self,
        model: nn.Module,
        objectives: Sequence[str],
        objective: str,
        tokenizer=None,
        adapter_name: str | None = None,
        activate: Callable[[], None] | None = None,
    ):
        super().__init__(model, objectives, tokenizer, name=f"genarm:{objective}")
        if objective not in self.objectives:
            raise UniarmError(
                f"objective {objective!r} is not one of {', '.join(self.objectives)}",
                "name the member after one of the preference's objectives",
            )
        self.objective = objective
        self.index = self.objectives.index(objective)
        self.adapter_name = adapter_name
        self._activate = activate or (self._set_adapter if adapter_name is not None else None)

    def _set_adapter(self) -> None:
        if self.model.active_adapter != self.adapter_name:
            self.model.set_adapter(self.adapter_name, inference_mode=True)

    def weights(self, preferences: torch.Tensor, beta: float) -> torch.Tensor:
        return preferences[:, self.index].float() / beta

    def forward(self, input_ids, attention_mask, position_ids, cache) -> torch.Tensor:
        if self._activate is not None:
            self._activate()
        return super().forward(input_ids, attention_mask, position_ids, cache)


def _close(a: Sequence[float], b: Sequence[float], tol: float = 1e-6) -> bool:
    return len(a) == len(b) and all(abs(x - y) <= tol for x, y in zip(a, b))
