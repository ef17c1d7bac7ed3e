"""One canonical reading of a prompt, whatever form it comes in.

Oracles take a prompt either as a conversation (a tuple of `Turn`) or as a string. A string
in Anthropic's HH-RLHF layout ("\\n\\nHuman: ... \\n\\nAssistant: ...") is split into turns, so
that the same dialogue is encoded the same way whether a loader parsed it or not.
"""

from __future__ import annotations

import re

from uniarm.data.schema import Turn

_HH_MARK = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def as_turns(prompt) -> tuple[Turn, ...]:
    """A conversation ending in the user's turn, from a string or a sequence of turns."""
    if not isinstance(prompt, str):
        return tuple(prompt)
    text = prompt if prompt.startswith("\n\n") else "\n\n" + prompt
    parts = _HH_MARK.split(text)
    if len(parts) < 3 or parts[0].strip():
        return (Turn("user", prompt),)
    turns = [Turn(_ROLES[role], body.strip()) for role, body in zip(parts[1::2], parts[2::2])]
    if turns and turns[-1].role == "assistant" and not turns[-1].content:
        turns.pop()  # the open "Assistant:" that waits for the reply
    return tuple(turns) or (Turn("user", prompt),)


def plain_dialogue(prompt) -> str:
    """A conversation as plain text: the bare prompt for one turn, role-prefixed otherwise."""
    turns = as_turns(prompt)
    if len(turns) == 1 and turns[0].role == "user":
        return turns[0].content
    return "\n".join(f"{t.role.capitalize()}: {t.content}" for t in turns)
