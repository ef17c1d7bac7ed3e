"""PKU-SafeRLHF loaders: beaver-scored 10K pairs, the human-labelled 500, the 5K safety pairs.

Objectives: `helpful` and `harmless`. The beaver-7b cost model scores harm (higher = more
harmful); it is negated here, once, so that `scores["harmless"]` is higher = better like
every other score (see schema.py).

Label check on the scored files (dev 500 + test 1,500): `better_response_id` is the argmax of
`help_score` and `safer_response_id` the argmin of `harm_score` on every pair without a tie;
the ties (help 0 + 4, harm 4 + 7) carry the file's arbitrary label, which is kept.
"""

from __future__ import annotations

import logging
import os

from uniarm.data.convert import from_chosen_rejected, single_turn
from uniarm.data.files import (
    number,
    read_json_records,
    require_file,
    shape_error,
    text,
    winner_id,
)
from uniarm.data.root import dataset_dir
from uniarm.data.schema import PreferencePair

log = logging.getLogger(__name__)

Root = str | os.PathLike | None

SCORED = "pku_saferlhf_10k_scored"
SCORED_FILES = ("dev.json", "test.json")
SCORED_FIELDS = (
    "prompt", "response_0", "response_1", "help_score_0", "help_score_1",
    "harm_score_0", "harm_score_1", "better_response_id", "safer_response_id",
)  # fmt: skip

HUMAN = "pku_saferlhf_10k_human500"
HUMAN_FILE = "validation.json"
# The hub's PKU-SafeRLHF(-10K) records have these fields too (human labels).
HUMAN_FIELDS = ("prompt", "response_0", "response_1", "better_response_id", "safer_response_id")

SAFETY = "pku_saferlhf_safety_pairs_5k"
SAFETY_FILE = "pku_seferlhf_realign_dpo_5k.json"


def scored_pair(record: dict, source: str, where: str) -> PreferencePair:
    """One PARM-format record: beaver reward (help) and cost (harm, negated) scores."""
    harm = (number(record, "harm_score_0", where), number(record, "harm_score_1", where))
    return PreferencePair(
        conversation=single_turn(text(record, "prompt", where)),
        responses=(text(record, "response_0", where), text(record, "response_1", where)),
        scores={
            "helpful": (
                number(record, "help_score_0", where),
                number(record, "help_score_1", where),
            ),
            "harmless": (-harm[0], -harm[1]),  # cost -> higher = more harmless
        },
        winners={
            "helpful": winner_id(record, "better_response_id", where),
            "harmless": winner_id(record, "safer_response_id", where),
        },
        source=source,
    )


def human_pair(record: dict, source: str, where: str) -> PreferencePair:
    """One record with PKU's own human labels (no scores)."""
    return PreferencePair(
        conversation=single_turn(text(record, "prompt", where)),
        responses=(text(record, "response_0", where), text(record, "response_1", where)),
        winners={
            "helpful": winner_id(record, "better_response_id", where),
            "harmless": winner_id(record, "safer_response_id", where),
        },
        source=source,
    )


def load_pku_saferlhf_10k_scored(root: Root = None) -> list[PreferencePair]:
    """dev.json then test.json, 2,000 pairs; `source` names the file's split."""
    folder = dataset_dir(root, SCORED)
    pairs = []
    for name in SCORED_FILES:
        path = require_file(folder, name)
        split = name.removesuffix(".json")
        for i, record in enumerate(read_json_records(path, SCORED_FIELDS)):
            pairs.append(scored_pair(record, f"{SCORED}/{split}", f"{path} record {i}"))
    log.debug("%s: %d pairs", SCORED, len(pairs))
    return pairs


def load_pku_saferlhf_10k_human500(root: Root = None) -> list[PreferencePair]:
    """500 pairs with human helpfulness and harmlessness winners."""
    path = require_file(dataset_dir(root, HUMAN), HUMAN_FILE)
    fields = HUMAN_FIELDS + ("is_response_0_safe", "is_response_1_safe")
    records = read_json_records(path, fields)
    return [human_pair(r, HUMAN, f"{path} record {i}") for i, r in enumerate(records)]


def load_pku_saferlhf_safety_pairs_5k(root: Root = None) -> list[PreferencePair]:
    """5,135 safe-vs-unsafe pairs; the file puts the safe response first, we shuffle it."""
    path = require_file(dataset_dir(root, SAFETY), SAFETY_FILE)
    pairs = []
    for i, record in enumerate(read_json_records(path, ("prompt", "response"))):
        where = f"{path} record {i}"
        responses = record["response"]
        if not (isinstance(responses, list) and len(responses) == 2):
            raise shape_error(where, "response", "a list of two strings [safer, less safe]")
        safer, unsafe = (str(r).strip() for r in responses)
        conversation = single_turn(text(record, "prompt", where))
        pairs.append(from_chosen_rejected(conversation, safer, unsafe, ("harmless",), SAFETY))
    return pairs
