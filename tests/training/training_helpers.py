"""Tiny models and planted preference data for the training tests.

Planted signal: the two responses of a pair are the same random filler with one marker word
put in at the same place: the marker of objective A (`helpful`) in one, the marker of
objective B (`harmless`) in the other. Objective A prefers the A-marked response, objective B
the B-marked one, so a preference-conditioned ARM must rank by A under (1, 0) and by B under
(0, 1).
"""

from __future__ import annotations

import random

import torch

from conftest import make_tiny_llama
from uniarm.data.schema import PreferencePair, Turn
from uniarm.training import TrainConfig

OBJECTIVES = ("helpful", "harmless")
MARKERS = {"helpful": " apple", "harmless": " river"}
FILLER = [
    " the",
    " a",
    " cat",
    " dog",
    " went",
    " home",
    " blue",
    " sky",
    " and",
    " then",
    " big",
    " small",
    " tree",
    " book",
    " read",
    " fast",
]
EMBEDDING_SCALE = 25.0
PROMPTS = ["Tell me something.", "Say a sentence.", "Write a line.", "Any thoughts?"]


def planted_pairs(n: int, seed: int, length: int = 6) -> list[PreferencePair]:
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        words = [rng.choice(FILLER) for _ in range(length)]
        where = rng.randrange(1, length + 1)
        texts = {
            objective: "".join(words[:where] + [marker] + words[where:]).strip()
            for objective, marker in MARKERS.items()
        }
        a_first = rng.random() < 0.5
        responses = (
            (texts["helpful"], texts["harmless"])
            if a_first
            else (texts["harmless"], texts["helpful"])
        )
        a_index = 0 if a_first else 1
        pairs.append(
            PreferencePair(
                conversation=(Turn("user", f"{rng.choice(PROMPTS)} #{rng.randrange(10**6)}"),),
                responses=responses,
                winners={"helpful": a_index, "harmless": 1 - a_index},
                source="planted",
            )
        )
    return pairs


def tiny_model(tokenizer, seed: int = 0, hidden: int = 32):
    """A tiny Llama whose embedding rows have the real model's scale (norm about 3, not 0.1),
    so that objective embeddings, and with them MoSLoRA's modulation, are not vanishingly
    small."""
    model = make_tiny_llama(tokenizer, seed=seed, hidden=hidden)
    with torch.no_grad():
        model.get_input_embeddings().weight.mul_(EMBEDDING_SCALE)
    return model


def save_tiny_model(folder, tokenizer, seed: int = 0, hidden: int = 32):
    """A tiny model (and the real tokenizer) saved as a model folder, usable as a model spec."""
    tiny_model(tokenizer, seed=seed, hidden=hidden).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_config(model_dir, output_dir, **overrides) -> TrainConfig:
    values = dict(
        method="uniarm",
        task="safety",
        base_model=str(model_dir),
        output_dir=output_dir,
        num_pairs=0,
        eval_pairs=16,
        max_prompt_tokens=48,
        max_response_tokens=16,
        batch_size=4,
        grad_accumulation=1,
        lr=1e-2,
        max_steps=4,
        warmup_ratio=0.0,
        beta_r=1.0,
        save_interval=2,
        log_interval=1,
        seed=0,
        num_threads=1,  # tiny matmuls: one thread beats two on a shared machine
    )
    values.update(overrides)
    return TrainConfig(**values)
