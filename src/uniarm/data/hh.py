"""Anthropic HH-RLHF loaders: the human chosen/rejected test splits and the 500 scored pairs.

HH stores each side of a pair as one dialogue text, "\\n\\nHuman: ...\\n\\nAssistant: ...". It is
parsed into turns; the turns both sides share are the conversation and the two final assistant
replies are the responses. Records whose two sides do not share that prefix (the final reply
itself contains a "Human:" turn, a handful per subset) or whose replies are identical carry no
usable preference and are skipped, with a count in the log.

Objectives: harmless-base gives `harmless`, the three helpful-* subsets give `helpful`.
"""

from __future__ import annotations

import logging
import os
import re

from uniarm.data.convert import from_chosen_rejected
from uniarm.data.files import (
    number,
    read_json_records,
    read_jsonl_gz_records,
    require_file,
    shape_error,
    text,
    winner_id,
)
from uniarm.data.root import dataset_dir
from uniarm.data.schema import PreferencePair, Turn
from uniarm.errors import UniarmError

log = logging.getLogger(__name__)

Root = str | os.PathLike | None

TEST = "hh_rlhf_test"
SUBSETS: dict[str, str] = {
    "harmless-base": "harmless",
    "helpful-base": "helpful",
    "helpful-online": "helpful",
    "helpful-rejection-sampled": "helpful",
}
SCORED = "hh_rlhf_scored500"
SCORED_FIELDS = (
    "prompt", "response_0", "response_1", "help_score_0", "help_score_1",
    "harm_score_0", "harm_score_1", "humor_score_0", "humor_score_1",
    "better_response_id", "safer_response_id", "humorer_responses_id",
)  # fmt: skip

ROLES = {"Human": "user", "Assistant": "assistant"}
MARKER = re.compile(r"\n\n(Human|Assistant):")


def parse_dialogue(dialogue: str) -> tuple[Turn, ...]:
    """Split an HH dialogue text into turns (Human -> user, Assistant -> assistant).

    Raises ValueError when the text does not start with a turn marker.
    """
    parts = MARKER.split(dialogue)
    if parts[0].strip():
        raise ValueError(f"text before the first turn marker: {parts[0][:40]!r}")
    return tuple(
        Turn(ROLES[role], content.strip())
        for role, content in zip(parts[1::2], parts[2::2], strict=True)
    )


def hh_pair(record: dict, objective: str, source: str, where: str) -> PreferencePair | None:
    """One chosen/rejected record as a pair, or None when it has no usable preference."""
    for side in ("chosen", "rejected"):
        if not isinstance(record[side], str):
            raise shape_error(where, side, "a dialogue string")
    try:
        chosen, rejected = parse_dialogue(record["chosen"]), parse_dialogue(record["rejected"])
    except ValueError:
        return None
    conversation = chosen[:-1]
    usable = (
        len(chosen) >= 2
        and chosen[:-1] == rejected[:-1]
        and chosen[-1].role == rejected[-1].role == "assistant"
        and conversation[-1].role == "user"
        and chosen[-1].content != rejected[-1].content
    )
    if not usable:
        return None
    return from_chosen_rejected(
        conversation, chosen[-1].content, rejected[-1].content, (objective,), source
    )


def load_hh_rlhf_test(
    root: Root = None, subsets: tuple[str, ...] | None = None
) -> list[PreferencePair]:
    """The four test subsets (or the named ones), human labels only; `source` names the subset."""
    folder = dataset_dir(root, TEST)
    unknown = [s for s in subsets or () if s not in SUBSETS]
    if unknown:
        raise UniarmError(
            f"unknown {TEST} subset(s): {', '.join(unknown)}", f"use: {', '.join(SUBSETS)}"
        )
    pairs: list[PreferencePair] = []
    for subset in subsets or tuple(SUBSETS):
        path = require_file(folder, f"{subset}/test.jsonl.gz")
        records = read_jsonl_gz_records(path, ("chosen", "rejected"))
        source = f"{TEST}/{subset}"
        kept = [
            hh_pair(r, SUBSETS[subset], source, f"{path} line {i + 1}")
            for i, r in enumerate(records)
        ]
        usable = [p for p in kept if p is not None]
        log.debug(
            "%s/%s: %d pairs, %d records skipped",
            TEST,
            subset,
            len(usable),
            len(kept) - len(usable),
        )
        pairs.extend(usable)
    return pairs


def parse_prompt(prompt: str, where: str) -> tuple[Turn, ...]:
    """A PARM-style HH prompt, a dialogue ending in an open "\\n\\nAssistant:" turn."""
    if not isinstance(prompt, str):
        raise shape_error(where, "prompt", "a dialogue string")
    try:
        turns = parse_dialogue(prompt)
    except ValueError as exc:
        raise shape_error(where, "prompt", f"an HH dialogue ({exc})") from exc
    if not turns or turns[-1] != Turn("assistant", ""):
        raise shape_error(where, "prompt", 'an HH dialogue ending in "\\n\\nAssistant:"')
    if len(turns) < 2 or turns[-2].role != "user":
        raise shape_error(where, "prompt", "a dialogue whose last turn is the Human's")
    return turns[:-1]


def scored_pair(record: dict, where: str) -> PreferencePair:
    """One PARM-format HH record; every score is already higher = better."""

    def scores(key: str) -> tuple[float, float]:
        return number(record, f"{key}_0", where), number(record, f"{key}_1", where)

    return PreferencePair(
        conversation=parse_prompt(record["prompt"], where),
        responses=(text(record, "response_0", where), text(record, "response_1", where)),
        scores={
            "helpful": scores("help_score"),
            "harmless": scores("harm_score"),
            "humor": scores("humor_score"),
        },
        winners={
            "helpful": winner_id(record, "better_response_id", where),
            "harmless": winner_id(record, "safer_response_id", where),
            "humor": winner_id(record, "humorer_responses_id", where),
        },
        source=SCORED,
    )


def load_hh_rlhf_scored500(root: Root = None) -> list[PreferencePair]:
    """500 HH train pairs scored by helpful, harmless (higher = more harmless) and humor RMs.

    Winners are the file's argmax ids; they match the scores on every pair without a tie.
    """
    path = require_file(dataset_dir(root, SCORED), "dev.json")
    records = read_json_records(path, SCORED_FIELDS)
    return [scored_pair(r, f"{path} record {i}") for i, r in enumerate(records)]
