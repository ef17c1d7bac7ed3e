"""The oracle interface: (prompt, response) pairs in, one score per objective out.

Every oracle returns scores with higher = better for every objective. A source that measures
a cost (the beaver-7b cost model: higher = more harmful) is turned around once, by its
configured sign, inside the oracle; nothing downstream flips signs again. Evaluation
(METHOD.md §6) scores each generated response with the k oracles of its task and averages
per objective.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from uniarm.errors import UniarmError


class Oracle(ABC):
    """Scores responses on a fixed tuple of objectives.

    Attributes:
        objectives: the objectives, in the order of the score columns (the task's order).
        name: a short label printed beside every figure, e.g. "distilled-minilm (...)".
    """

    objectives: tuple[str, ...]
    name: str

    @abstractmethod
    def _score(self, prompts: list, responses: list[str], batch_size: int) -> np.ndarray:
        """(N, k) scores, higher = better, columns in `objectives` order."""

    def score(
        self, prompts: Sequence, responses: Sequence[str], batch_size: int = 16
    ) -> np.ndarray:
        """Score N (prompt, response) pairs: an (N, k) float array, higher = better.

        A prompt is a string (HH-RLHF "Human:/Assistant:" dialogues are split into turns) or a
        conversation, a sequence of `Turn`s ending in the user's turn.
        """
        prompts, responses = list(prompts), list(responses)
        if len(prompts) != len(responses):
            raise UniarmError(
                f"{len(prompts)} prompts but {len(responses)} responses",
                "pass one prompt per response (repeat a prompt for several responses)",
            )
        if not all(isinstance(r, str) for r in responses):
            raise UniarmError("every response must be a string")
        if batch_size < 1:
            raise UniarmError(f"batch_size must be at least 1, got {batch_size}")
        if not prompts:
            return np.zeros((0, len(self.objectives)), dtype=np.float32)
        scores = np.asarray(self._score(prompts, responses, batch_size), dtype=np.float32)
        assert scores.shape == (len(prompts), len(self.objectives)), scores.shape
        return scores

    def describe(self) -> str:
        """What the oracle is and what it was trained on; evaluation prints it beside figures."""
        return self.name

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} objectives={self.objectives}>"


class StackedOracle(Oracle):
    """Several oracles side by side, e.g. one reward model per objective."""

    def __init__(self, parts: Sequence[Oracle], objectives: Sequence[str] | None = None):
        columns = {o: (i, j) for i, p in enumerate(parts) for j, o in enumerate(p.objectives)}
        self.parts = list(parts)
        self.objectives = tuple(objectives or columns)
        missing = [o for o in self.objectives if o not in columns]
        if missing:
            raise UniarmError(
                f"no oracle scores the objective(s) {', '.join(missing)}",
                f"the oracles given score: {', '.join(columns)}",
            )
        self._columns = [columns[o] for o in self.objectives]
        self.name = " + ".join(p.name for p in self.parts)

    def _score(self, prompts, responses, batch_size):
        used = sorted({i for i, _ in self._columns})
        results = {i: self.parts[i].score(prompts, responses, batch_size) for i in used}
        return np.stack([results[i][:, j] for i, j in self._columns], axis=1)

    def describe(self) -> str:
        return "\n".join(p.describe() for p in self.parts)
