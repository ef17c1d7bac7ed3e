"""The HTTP API and the page: a person picks the preference and reads the reply.

    GET  /              the page: a prompt, one slider per objective, the reply
    GET  /v1/info       objectives, method, models
    POST /v1/generate   {"prompt" or "messages", "preference", decoding settings} -> reply
    GET  /healthz       liveness and batching counters

Requests from different users are decoded together by a `RequestBatcher`, each row under its
own preference; nothing is reloaded between requests.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import asynccontextmanager
from importlib import resources

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from uniarm.data.schema import Turn
from uniarm.decoding import GuidedDecoder
from uniarm.errors import UniarmError
from uniarm.preference import validate_preference
from uniarm.serving.batcher import RequestBatcher


class Message(BaseModel):
    role: str = Field(pattern="^(system|user|assistant)$")
    content: str


class GenerateRequest(BaseModel):
    # a misspelt setting is refused (422), never silently ignored
    model_config = ConfigDict(extra="forbid")

    prompt: str | None = Field(None, description="a single user message")
    messages: list[Message] | None = Field(None, description="a conversation ending with the user")
    preference: dict[str, float] | list[float] | None = Field(
        None, description="weights per objective, summing to 1 (ignored without an ARM)"
    )
    max_new_tokens: int | None = None
    do_sample: bool | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    beta: float | None = Field(None, description="guidance strength: an ARM's weight is w/beta")
    stop: list[str] | None = Field(None, description="strings that end the reply")
    seed: int = 0


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
) -> FastAPI:
    """A FastAPI app serving `decoder`; `info` is shown at /v1/info (method, model names)."""
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
        return JSONResponse(status_code=400, content={"error": exc.problem, "fix": exc.fix})

    @app.exception_handler(RequestValidationError)
    async def bad_schema(request, exc: RequestValidationError):
        # The same {"error", "fix"} body as every other bad request, not pydantic's `detail`.
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
            **(info or {}),
        }

    @app.get("/healthz")
    async def health():
        return {"ok": True, "batches": batcher.batches_run, "rows": batcher.rows_run}

    @app.post("/v1/generate")
    async def generate(request: GenerateRequest):
        conversation = _conversation(request)
        preference = _preference(request, objectives)
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
