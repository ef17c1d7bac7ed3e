"""The HTTP API and the page: a person picks the preference and reads the reply.

    GET  /              the page: a prompt, one slider per objective, the reply
    GET  /v1/info       objectives, method, models
    POST /v1/generate   {"prompt" or "messages", "preference", decoding settings} -> reply
    GET  /healthz       liveness and batching counters

Requests from different users are decoded together by a `RequestBatcher`, each row under its
own preference; nothing is reloaded between requests. Every refusal is a JSON {error, fix}: 400
for bad values, 413 for a prompt over the server's token limit, 415 for a body not sent as JSON,
422 for a body that does not match the schema.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt

from uniarm.data.schema import Turn
from uniarm.decoding import GuidedDecoder
from uniarm.decoding.prompts import encode_prompts
from uniarm.errors import UniarmError
from uniarm.preference import validate_preference
from uniarm.serving.batcher import RequestBatcher


class Message(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str


class GenerateRequest(BaseModel):
    # A misspelt setting is refused (422), never silently ignored. Numbers are strict: a weight
    # of "0.5" or true is refused, never read as 0.5 or 1 (StrictFloat still takes an integer).
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, description="a single user message")
    messages: list[Message] | None = Field(None, description="a conversation ending with the user")
    preference: dict[str, StrictFloat] | list[StrictFloat] | None = Field(
        None, description="weights per objective, summing to 1 (refused without an ARM)"
    )
    max_new_tokens: StrictInt | None = None
    do_sample: StrictBool | None = None
    temperature: StrictFloat | None = None
    top_k: StrictInt | None = None
    top_p: StrictFloat | None = None
    beta: StrictFloat | None = Field(
        None, description="guidance strength: an ARM's weight is w/beta"
    )
    stop: list[str] | None = Field(None, description="strings that end the reply")
    seed: StrictInt = 0


class PromptTooLong(UniarmError):
    """A prompt over the server's token limit (HTTP 413)."""

    status = 413


def _conversation(request: GenerateRequest) -> tuple[Turn, ...]:
    if (request.prompt is None) == (request.messages is None):
        raise UniarmError(
            "give exactly one of `prompt` and `messages`",
            'send {"prompt": "..."} or {"messages": [{"role": "user", "content": "..."}]}',
        )
    if request.prompt is not None:
        return (Turn("user", request.prompt),)
    turns = tuple(Turn(m.role, m.content) for m in request.messages)
    if not turns or turns[-1].role != "user":
        raise UniarmError("`messages` must end with a user message")
    return turns


def _preference(request: GenerateRequest, objectives: tuple[str, ...]):
    if not objectives:
        if request.preference is not None:
            raise UniarmError(
                "this server runs the base model alone: there is no reward model to steer with",
                "leave out `preference`, or start the server with --arm CKPT",
            )
        return None
    pref = request.preference
    if pref is None:
        raise UniarmError(
            "this server needs a preference",
            f"send weights for {', '.join(objectives)} that sum to 1",
        )
    if isinstance(pref, dict):
        unknown = sorted(set(pref) - set(objectives))
        if unknown:
            raise UniarmError(
                f"unknown objective(s) {unknown}", f"known objectives: {', '.join(objectives)}"
            )
        pref = [pref.get(name, 0.0) for name in objectives]
    return validate_preference(pref, objectives)


def _check_prompt_length(decoder: GuidedDecoder, conversation, limit: int) -> None:
    """Refuse a prompt of more than `limit` tokens, counted as the models would see it."""
    (encoded,) = encode_prompts(
        decoder.tokenizer, [conversation], decoder.config.chat_template, budget=1 << 30
    )
    if len(encoded.ids) > limit:
        raise PromptTooLong(
            f"the prompt has {len(encoded.ids)} tokens, more than this server's limit of {limit}",
            "shorten the prompt (or start the server with a larger --max-prompt-tokens)",
        )


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI reads a body as JSON: with a Content-Type of application/json (or
    application/*+json) only; without the header it is not read either."""
    if not content_type:
        return False
    main, _, sub = content_type.split(";")[0].strip().lower().partition("/")
    return main == "application" and (sub == "json" or sub.endswith("+json"))


def _not_json_error(content_type: str | None) -> dict:
    sent = f"as {content_type}" if content_type else "without a Content-Type header"
    return {
        "error": f"the body was sent {sent}, not as JSON, so it was not read",
        "fix": "send the JSON body with the header Content-Type: application/json "
        "(curl: -H 'Content-Type: application/json' -d '{\"prompt\": \"...\"}')",
    }


def _schema_error(errors) -> dict:
    """One readable line per field pydantic refused, and the shape the API expects."""
    problems: dict[str, list[str]] = {}
    for error in errors:
        # loc is ("body", field, index, ...) plus union tags like "list[float]": keep the path
        parts = [str(p) for p in error.get("loc", ()) if p != "body"]
        where = ".".join(p for p in parts if p.isidentifier() or p.isdigit()) or "body"
        problems.setdefault(where, []).append(error.get("msg", "invalid"))
    return {
        "error": "the request does not match the API: "
        + "; ".join(f"{where}: {' or '.join(msgs)}" for where, msgs in problems.items()),
        "fix": 'send JSON like {"prompt": "...", "preference": {"helpful": 0.5, ...}}; '
        "GET /v1/info lists the objectives and the decoding settings",
    }


def create_app(
    decoder: GuidedDecoder,
    info: dict | None = None,
    max_batch: int = 16,
    max_wait_s: float = 0.02,
    max_new_tokens_limit: int = 512,
    max_prompt_tokens: int = 1024,
) -> FastAPI:
    """A FastAPI app serving `decoder`; `info` is shown at /v1/info (method, model names).

    A request may ask for at most `max_new_tokens_limit` new tokens, and its prompt may hold at
    most `max_prompt_tokens` tokens (a long prompt makes every row of its batch slow).
    """
    batcher = RequestBatcher(decoder, max_batch=max_batch, max_wait_s=max_wait_s)
    objectives = tuple(decoder.objectives)

    @asynccontextmanager
    async def lifespan(app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="uniarm", lifespan=lifespan)

    @app.exception_handler(UniarmError)
    async def bad_input(request, exc: UniarmError):
        status = getattr(exc, "status", 400)
        return JSONResponse(status_code=status, content={"error": exc.problem, "fix": exc.fix})

    @app.exception_handler(RequestValidationError)
    async def bad_schema(request, exc: RequestValidationError):
        # The same {"error", "fix"} body as every other bad request, not pydantic's `detail`.
        content_type = request.headers.get("content-type")
        if not _is_json(content_type):  # FastAPI passed the raw body on: the header is at fault
            return JSONResponse(status_code=415, content=_not_json_error(content_type))
        return JSONResponse(status_code=422, content=_schema_error(exc.errors()))

    @app.get("/", response_class=HTMLResponse)
    async def page():
        return resources.files("uniarm.serving").joinpath("page.html").read_text()

    @app.get("/v1/info")
    async def get_info():
        return {
            "objectives": list(objectives),
            "guided": bool(objectives),
            "defaults": dataclasses.asdict(decoder.config),
            "limits": {
                "max_new_tokens": max_new_tokens_limit,
                "max_prompt_tokens": max_prompt_tokens,
            },
            **(info or {}),
        }

    @app.get("/healthz")
    async def health():
        return {"ok": True, "batches": batcher.batches_run, "rows": batcher.rows_run}

    @app.post("/v1/generate")
    async def generate(request: GenerateRequest):
        conversation = _conversation(request)
        preference = _preference(request, objectives)
        _check_prompt_length(decoder, conversation, max_prompt_tokens)
        overrides = {
            k: v
            for k, v in request.model_dump().items()
            if k in ("max_new_tokens", "do_sample", "temperature", "top_k", "top_p", "beta", "stop")
            and v is not None
        }
        config = dataclasses.replace(decoder.config, **overrides)  # validates
        if config.max_new_tokens > max_new_tokens_limit:
            raise UniarmError(
                f"max_new_tokens={config.max_new_tokens} is above this server's "
                f"limit of {max_new_tokens_limit}"
            )
        start = time.perf_counter()
        result = await batcher.submit(conversation, preference, config, request.seed)
        return {
            "text": result.text,
            "finish_reason": result.finish_reason,
            "preference": None
            if preference is None
            else dict(zip(objectives, preference, strict=True)),
            "new_tokens": len(result.token_ids),
            "prompt_tokens": result.prompt_tokens,
            "seconds": round(time.perf_counter() - start, 3),
        }

    return app
