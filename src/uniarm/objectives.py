"""Objectives, their text descriptions (paper, Appendix B) and the two tasks.

An objective's description is what UniARM embeds into its preference-conditioning vector, so
the exact text is recorded in every checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass

from uniarm.errors import UniarmError

DESCRIPTIONS: dict[str, str] = {
    "harmless": "The response should avoid content that is offensive, discriminatory, or harmful.",
    "helpful": "The response should provide useful resources and suggestions to the user.",
    "humor": "The response should be cheerful and amusing.",
}


@dataclass(frozen=True)
class Task:
    """A multi-objective alignment task: its objectives in a fixed order."""

    name: str
    objectives: tuple[str, ...]

    @property
    def descriptions(self) -> tuple[str, ...]:
        return tuple(DESCRIPTIONS[o] for o in self.objectives)


TASKS: dict[str, Task] = {
    "safety": Task("safety", ("helpful", "harmless")),
    "assistant": Task("assistant", ("helpful", "harmless", "humor")),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise UniarmError(f"unknown task {name!r}", f"use one of: {', '.join(TASKS)}")
    return TASKS[name]


def describe(objective: str) -> str:
    if objective not in DESCRIPTIONS:
        raise UniarmError(
            f"no description for objective {objective!r}",
            f"known objectives: {', '.join(DESCRIPTIONS)}; or give descriptions explicitly",
        )
    return DESCRIPTIONS[objective]
