"""Prompts for decoding: read from files, rendered with the chat template, fitted to the context."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from uniarm.data.schema import Turn, render_prompt
from uniarm.errors import UniarmError

log = logging.getLogger(__name__)

Prompt = str | tuple[Turn, ...]


@dataclass(frozen=True)
class EncodedPrompt:
    """A prompt's token ids, and how many tokens were cut from its left to fit the context."""

    ids: tuple[int, ...]
    cut: int = 0


def _user_text(prompt: Prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    if not prompt:
        return ""
    return prompt[-1].content


def encode_prompts(
    tokenizer,
    prompts: Sequence[Prompt],
    chat_template: bool,
    budget: int,
    overlong: str = "truncate",
) -> list[EncodedPrompt]:
    """Token ids of each prompt, at most `budget` long (context minus max_new_tokens).

    A prompt over budget is cut from the left with a warning (`overlong="truncate"`) or
    refused (`"error"`). An empty prompt is always refused.
    """
    if budget < 1:
        raise UniarmError(
            "max_new_tokens leaves no room for a prompt in the model's context",
            "lower max_new_tokens",
        )
    encoded = []
    for number, prompt in enumerate(prompts):
        if not _user_text(prompt).strip():
            raise UniarmError(f"prompt {number} is empty", "give every prompt some text")
        if chat_template:
            # As training encodes prompts: a chat template writes its own special tokens.
            text = render_prompt(tokenizer, prompt)
            templated = bool(getattr(tokenizer, "chat_template", None))
            ids = tokenizer(text, add_special_tokens=not templated)["input_ids"]
        else:
            text = prompt if isinstance(prompt, str) else "\n\n".join(t.content for t in prompt)
            ids = tokenizer(text)["input_ids"]
        cut = max(0, len(ids) - budget)
        if cut and overlong == "error":
            raise UniarmError(
                f"prompt {number} has {len(ids)} tokens, more than the {budget} that fit the "
                "context with max_new_tokens",
                "shorten the prompt, lower max_new_tokens, or allow --overlong truncate",
            )
        if cut:
            log.warning("prompt %d: cut %d of its %d tokens from the left", number, cut, len(ids))
        encoded.append(EncodedPrompt(tuple(ids[cut:]), cut))
    return encoded


def read_prompts(path: str | Path) -> list[dict]:
    """Prompt records from a text file (one prompt a line) or a JSONL file.

    JSONL records hold `prompt` (text) or `messages` / `conversation` (a list of
    {"role", "content"}); other fields (an `id`, say) are kept and copied to the output.
    Each record gets `prompt`: the text or a tuple of `Turn`s.
    """
    path = Path(path)
    if not path.is_file():
        raise UniarmError(f"prompts file not found: {path}", "pass an existing file")
    lines = path.read_text().splitlines()
    first = next((line for line in lines if line.strip()), "")
    if path.suffix != ".jsonl" and not first.lstrip().startswith("{"):
        return [{"prompt": line} for line in lines if line.strip()]

    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise UniarmError(f"{path}:{number} is not valid JSON: {exc}") from exc
        records.append(_prompt_record(record, f"{path}:{number}"))
    if not records:
        raise UniarmError(f"{path} holds no prompts")
    return records


def _prompt_record(record, where: str) -> dict:
    if not isinstance(record, dict):
        raise UniarmError(f"{where}: expected a JSON object with a prompt")
    turns = record.get("messages", record.get("conversation"))
    if turns is not None:
        try:
            conversation = tuple(Turn(t["role"], t["content"]) for t in turns)
        except (TypeError, KeyError) as exc:
            raise UniarmError(f"{where}: messages must be a list of {{role, content}}") from exc
        if not conversation or conversation[-1].role != "user":
            raise UniarmError(f"{where}: the conversation must end with a user turn")
        prompt: Prompt = conversation
    elif isinstance(record.get("prompt"), str):
        prompt = record["prompt"]
    else:
        raise UniarmError(f"{where}: no 'prompt' text and no 'messages' list")
    if not _user_text(prompt).strip():
        raise UniarmError(f"{where}: the prompt is empty", "give every prompt some text")
    rest = {k: v for k, v in record.items() if k not in ("prompt", "messages", "conversation")}
    return {**rest, "prompt": prompt}
