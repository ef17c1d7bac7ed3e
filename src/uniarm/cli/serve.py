"""`uniarm serve`: the HTTP API and the preference page, over one base model and its ARM(s).

uniarm serve --arm runs/demo/train-uniarm/arm          # then open http://127.0.0.1:8000
uniarm serve                                              # the base model alone

The port is taken before the models load, so a port in use fails at once; the address is
printed once the server is listening.
"""

from __future__ import annotations

import argparse
import errno
import socket
from dataclasses import dataclass
from pathlib import Path

from uniarm import config as cfg
from uniarm.config import field
from uniarm.decoding.config import DecodingConfig
from uniarm.errors import UniarmError


@dataclass
class ServeConfig:
    """Where the server listens and what it serves.

    Parameters:
        arm: the reward model checkpoint (none: the base model alone).
        base_model: the frozen model that writes the replies.
        host, port: where to listen (loopback by default; port 0: any free port).
        max_batch: most requests decoded together.
        max_wait_ms: how long a request waits for others to share its batch.
        max_prompt_tokens: the longest prompt accepted, in tokens as the models see it (chat
            template included); a longer one is refused with HTTP 413, since one long prompt
            slows every row of its batch.
        threads: torch CPU threads (0: torch's default).
    """

    arm: Path | None = field(None, help="ARM checkpoint folder (none: the base model alone)")
    base_model: str = field("smollm2-135m-instruct", help="base model that writes the replies")
    host: str = field("127.0.0.1", help="address to listen on")
    port: int = field(8000, help="port to listen on (0: any free port)")
    max_batch: int = field(16, help="most requests decoded together")
    max_wait_ms: float = field(20.0, help="wait for company before decoding a request")
    max_prompt_tokens: int = field(1024, help="longest prompt accepted, in tokens (longer: 413)")
    threads: int = field(0, help="torch CPU threads (0: torch's default)")

    def __post_init__(self):
        if not 0 <= self.port <= 65535:
            raise UniarmError(f"port {self.port} is out of range", "use 1 to 65535 (0: any)")
        if self.max_batch < 1:
            raise UniarmError(f"max_batch={self.max_batch} must be >= 1")
        if self.max_prompt_tokens < 1:
            raise UniarmError(f"max_prompt_tokens={self.max_prompt_tokens} must be >= 1")
        if self.max_wait_ms < 0:
            raise UniarmError(f"max_wait_ms={self.max_wait_ms} is negative", "use 0 or more")
        if self.threads < 0:
            raise UniarmError(f"threads={self.threads} is negative", "use 0 (default) or more")


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


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port), not yet listening; a busy port is a UniarmError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: no TIME_WAIT wait
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise UniarmError(
                f"port {port} on {host} is already in use (another server is listening there)",
                f"stop that server, or pass another --port, e.g. --port {port + 1}",
            ) from exc
        raise UniarmError(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}",
            "pass an address of this machine to --host (127.0.0.1, or 0.0.0.0 for all)",
        ) from exc
    return sock


def address(sock: socket.socket) -> str:
    """The URL of a bound socket (its real port when port 0 was asked for)."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def make_server(app, sock: socket.socket):
    """A uvicorn server over `app` on the bound `sock`, which prints its address once listening
    (uvicorn prints nothing of its own for a socket it is given)."""
    import uvicorn

    class AnnouncingServer(uvicorn.Server):
        async def startup(self, sockets=None):
            await super().startup(sockets)  # the app's startup, then listen()
            if self.started:
                print(f"serving on {address(sock)}", flush=True)

    return AnnouncingServer(uvicorn.Config(app, log_level="warning"))


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
    return create_app(
        decoder,
        info,
        max_batch=serve.max_batch,
        max_wait_s=serve.max_wait_ms / 1000,
        max_prompt_tokens=serve.max_prompt_tokens,
    )


def run(args) -> int:
    import torch

    from uniarm.decoding.loading import checkpoint_method

    serve = cfg.from_namespace(ServeConfig, args)
    decoding = cfg.from_namespace(DecodingConfig, args)
    if serve.arm is not None:
        checkpoint_method(serve.arm)  # a wrong --arm fails before the base model loads
    sock = bind(serve.host, serve.port)  # so does a port in use
    try:
        if serve.threads:
            torch.set_num_threads(serve.threads)
        server = make_server(build_app(serve, decoding), sock)
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
