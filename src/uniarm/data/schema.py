"""One schema for every preference data set: a prompt and two responses, judged per objective.

Scores are stored with higher = better for every objective. Sources that record a cost (the
beaver-7b cost model: higher = more harmful) are negated once, in their loader, and nowhere
else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Turn:
    role: str  # "user" or "assistant" (or "system")
    content: str


@dataclass(frozen=True)
class PreferencePair:
    """A prompt (a conversation ending in a user turn) and two candidate responses.

    Attributes:
        conversation: the turns before the responses; the last one is the user's.
        responses: the two candidate assistant replies.
        scores: per objective, the two responses' scores (higher = better), where recorded.
        winners: per objective, the index (0 or 1) of the better response. Loaders derive it
            from the scores where no label is given, so every objective in `scores` has one.
        source: the data set it came from.
    """

    conversation: tuple[Turn, ...]
    responses: tuple[str, str]
    scores: dict[str, tuple[float, float]] = field(default_factory=dict)
    winners: dict[str, int] = field(default_factory=dict)
    source: str = ""

    @property
    def prompt(self) -> str:
        """The last user turn (the prompt text of single-turn data)."""
        return self.conversation[-1].content

    @property
    def prompt_id(self) -> str:
        """A stable id of the whole conversation; splits are made by it."""
        text = "\x1e".join(f"{t.role}\x1f{t.content}" for t in self.conversation)
        return hashlib.sha1(text.encode()).hexdigest()[:16]

    @property
    def objectives(self) -> tuple[str, ...]:
        return tuple(self.winners)

    def chosen_rejected(self, objective: str) -> tuple[str, str]:
        """(better, worse) response for one objective."""
        w = self.winners[objective]
        return self.responses[w], self.responses[1 - w]


def as_messages(conversation: tuple[Turn, ...]) -> list[dict[str, str]]:
    return [{"role": t.role, "content": t.content} for t in conversation]


def render_prompt(tokenizer, conversation: tuple[Turn, ...] | str) -> str:
    """The prompt text the model sees: the chat template with the assistant turn opened.

    Tokenizers without a chat template get a plain 'User: ... Assistant:' layout.
    """
    if isinstance(conversation, str):
        conversation = (Turn("user", conversation),)
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            as_messages(conversation), tokenize=False, add_generation_prompt=True
        )
    lines = [f"{t.role.capitalize()}: {t.content}" for t in conversation]
    return "\n\n".join(lines) + "\n\nAssistant:"
