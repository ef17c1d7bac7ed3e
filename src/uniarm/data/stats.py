"""Summary figures of a list of pairs: label balance and label-score agreement per objective."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from uniarm.data.schema import PreferencePair


@dataclass(frozen=True)
class ObjectiveStats:
    objective: str
    labelled: int  # pairs with a winner for this objective
    winner_1: int  # of those, pairs whose winner is response 1
    scored: int  # pairs with scores for this objective
    ties: int  # scored pairs whose two scores are equal
    agree: int  # untied scored pairs whose winner has the higher score

    @property
    def agreement(self) -> float | None:
        untied = self.scored - self.ties
        return self.agree / untied if untied else None


def objective_stats(pairs: Sequence[PreferencePair], objective: str) -> ObjectiveStats:
    labelled = [p for p in pairs if objective in p.winners]
    scored = [p for p in labelled if objective in p.scores]
    untied = [p for p in scored if p.scores[objective][0] != p.scores[objective][1]]
    agree = sum(
        p.scores[objective][p.winners[objective]] > p.scores[objective][1 - p.winners[objective]]
        for p in untied
    )
    return ObjectiveStats(
        objective=objective,
        labelled=len(labelled),
        winner_1=sum(p.winners[objective] for p in labelled),
        scored=len(scored),
        ties=len(scored) - len(untied),
        agree=agree,
    )


def all_objectives(pairs: Sequence[PreferencePair]) -> list[str]:
    """The objectives labelled anywhere in `pairs`, in order of first appearance."""
    seen: dict[str, None] = {}
    for pair in pairs:
        seen.update(dict.fromkeys(pair.winners))
    return list(seen)
