"""Small conversions the loaders share: one-turn prompts and chosen/rejected pairs.

Sources that store the preferred response first (HH-RLHF chosen/rejected, the safety pairs)
would give a label of 0 on every pair, which a model can learn without reading anything. Such
pairs are put in a random order that depends only on the pair's own text, so every load (and
every machine) gives the same order.
"""

from __future__ import annotations

import hashlib

from uniarm.data.schema import PreferencePair, Turn


def single_turn(prompt: str) -> tuple[Turn, ...]:
    return (Turn("user", prompt),)


def seeded_swap(conversation: tuple[Turn, ...], first: str, second: str) -> bool:
    """A fair coin seeded by the pair's text: True means `first` goes to index 1."""
    key = "\x1e".join([t.content for t in conversation] + [first, second])
    return hashlib.sha1(key.encode()).digest()[0] & 1 == 1


def from_chosen_rejected(
    conversation: tuple[Turn, ...],
    chosen: str,
    rejected: str,
    objectives: tuple[str, ...],
    source: str,
) -> PreferencePair:
    """A pair labelled only by which response won, in a deterministic random order."""
    if seeded_swap(conversation, chosen, rejected):
        responses, winner = (rejected, chosen), 1
    else:
        responses, winner = (chosen, rejected), 0
    return PreferencePair(
        conversation=conversation,
        responses=responses,
        winners={objective: winner for objective in objectives},
        source=source,
    )
