"""The `uniarm` command: one entry point, one module per sub-command under `uniarm.cli`.

Each sub-command module defines `register(subparsers)`, which adds its parser and sets
`func`. Modules import torch and transformers inside their `run`, so `--help` stays fast.
`-q` and `-v` work before the sub-command and after it (`uniarm -q train`, `uniarm train -q`).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys

from uniarm import __version__
from uniarm.errors import UniarmError

COMMANDS = ("info", "train", "generate", "oracle", "evaluate", "demo", "compare", "serve")


def add_logging_flags(parser: argparse.ArgumentParser, default: object = False) -> None:
    """`-v` / `-q` on `parser` (main() reads them to set up logging and progress bars)."""
    parser.add_argument(
        "-v", "--verbose", action="store_true", default=default, help="debug logging"
    )
    parser.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        default=default,
        help="warnings only, no progress bars",
    )


class CommandParser(argparse.ArgumentParser):
    """A sub-command's parser (and, through `add_subparsers`, its own sub-commands'): it takes
    `-q` / `-v` too.

    Their default is SUPPRESS, since argparse copies every attribute a sub-parser sets onto
    the top-level result: a default False would undo `uniarm -q train`.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        add_logging_flags(self, default=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uniarm",
        description="Multi-objective test-time alignment: train a preference-conditioned "
        "reward model (UniARM) and steer a frozen LLM with it.",
    )
    parser.add_argument("--version", action="version", version=f"uniarm {__version__}")
    add_logging_flags(parser)
    subparsers = parser.add_subparsers(
        dest="command", metavar="COMMAND", parser_class=CommandParser
    )
    for name in COMMANDS:
        module_name = f"uniarm.cli.{name}"
        if importlib.util.find_spec(module_name) is not None:
            importlib.import_module(module_name).register(subparsers)
    return parser


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname).1s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    if quiet:
        import os

        os.environ.setdefault("TQDM_DISABLE", "1")
    for noisy in ("httpx", "urllib3", "filelock", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    if {"-q", "--quiet"} & set(sys.argv[1:] if argv is None else argv):
        # Before any sub-command module imports tqdm or transformers, which read these once.
        import os

        os.environ.setdefault("TQDM_DISABLE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    setup_logging(args.verbose, args.quiet)
    try:
        return int(args.func(args) or 0)
    except UniarmError as exc:
        print(f"uniarm {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"uniarm {args.command}: interrupted", file=sys.stderr)
        return 130
