"""`uniarm serve`: the HTTP API and the preference page, over one base model and its ARM(s).

uniarm serve --arm runs/demo/train-uniarm/arm          # then open http://127.0.0.1:8000
uniarm serve                                              # the base model alone
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from uniarm import config as cfg
from uniarm.config import field
from uniarm.decoding.config import DecodingConfig


@dataclass
class ServeConfig:
    """Where the server listens and what it serves.

    Parameters:
        arm: the reward model checkpoint (none: the base model alone).
        base_model: the frozen model that writes the replies.
        host, port: where to listen (loopback by default).
        max_batch: most requests decoded together.
        max_wait_ms: how long a request waits for others to share its batch.
    """

    arm: Path | None = field(None, help="ARM checkpoint folder (none: the base model alone)")
    base_model: str = field("smollm2-135m-instruct", help="base model that writes the replies")
    host: str = field("127.0.0.1", help="address to listen on")
    port: int = field(8000, help="port to listen on")
    max_batch: int = field(16, help="most requests decoded together")
    max_wait_ms: float = field(20.0, help="wait for company before decoding a request")
    threads: int = field(0, help="torch CPU threads (0: torch's default)")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="HTTP API and a page to pick a preference and read the reply",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cfg.add_arguments(parser, ServeConfig)
    cfg.add_arguments(parser, DecodingConfig, skip=("batch_size",))
    parser.set_defaults(func=run)


def build_app(serve: ServeConfig, decoding: DecodingConfig):
    from uniarm.decoding import GuidedDecoder, load_guides
    from uniarm.models import load_model
    from uniarm.serving.app import create_app

    base, tokenizer = load_model(serve.base_model)
    guides = [] if serve.arm is None else load_guides(serve.arm)
    decoding.batch_size = serve.max_batch
    decoder = GuidedDecoder(base, tokenizer, guides, decoding)
    method = guides[0].name.split(":")[0] if guides else "none"
    info = {
        "base_model": serve.base_model,
        "arm": str(serve.arm) if serve.arm else None,
        "method": method,
    }
    return create_app(decoder, info, max_batch=serve.max_batch, max_wait_s=serve.max_wait_ms / 1000)


def run(args) -> int:
    import torch
    import uvicorn

    serve = cfg.from_namespace(ServeConfig, args)
    decoding = cfg.from_namespace(DecodingConfig, args)
    if serve.threads:
        torch.set_num_threads(serve.threads)
    app = build_app(serve, decoding)
    print(f"serving on http://{serve.host}:{serve.port}")
    uvicorn.run(app, host=serve.host, port=serve.port, log_level="warning")
    return 0
