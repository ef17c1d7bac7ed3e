"""Dataclass configuration shared by the CLI and the YAML recipes.

Each config is a dataclass whose fields carry a `help` string in their metadata and whose
`__post_init__` validates. `add_arguments` turns a dataclass into argparse flags,
`from_namespace` builds it back, and `load_recipe` reads a YAML recipe of the same fields,
so that nothing is written twice by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from uniarm.errors import UniarmError

T = TypeVar("T")


def field(default: Any = dataclasses.MISSING, help: str = "", **kwargs: Any) -> Any:
    """A dataclass field with CLI help; lists and dicts may be given as defaults directly."""
    if isinstance(default, list | dict):
        value = default
        return dataclasses.field(
            default_factory=lambda: type(value)(value), metadata={"help": help}, **kwargs
        )
    return dataclasses.field(default=default, metadata={"help": help}, **kwargs)


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """Add one flag per field of dataclass `cls` (defaults are applied in `from_namespace`)."""
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        tp, _ = _unwrap_optional(hints[f.name])
        origin = typing.get_origin(tp)
        kwargs: dict[str, Any] = {"help": f.metadata.get("help", ""), "default": None}
        if tp is bool:
            kwargs.update(type=_parse_bool, metavar="BOOL")
        elif origin in (list, tuple):
            (inner, *_) = typing.get_args(tp) or (str,)
            kwargs.update(type=inner if inner in (int, float, str) else str, nargs="+")
        elif origin is typing.Literal:
            kwargs.update(choices=list(typing.get_args(tp)))
        elif tp in (int, float, str):
            kwargs.update(type=tp)
        elif tp is Path:
            kwargs.update(type=Path)
        else:
            kwargs.update(type=str)
        default = _default_of(f)
        # a help text that names its own default (e.g. "default: the method's") keeps it
        if (
            default is not dataclasses.MISSING
            and kwargs["help"]
            and "default" not in kwargs["help"]
        ):
            kwargs["help"] += f" (default: {default})"
        group.add_argument(_flag(f.name), dest=f.name, **kwargs)


def _default_of(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def build(cls: type[T], values: dict[str, Any]) -> T:
    """Build `cls` from a dict, rejecting unknown keys with the list of known ones."""
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise UniarmError(
            f"unknown setting(s) for {cls.__name__}: {', '.join(unknown)}",
            f"use one of: {', '.join(sorted(known))}",
        )
    hints = typing.get_type_hints(cls)
    coerced = {}
    for name, value in values.items():
        tp, _ = _unwrap_optional(hints[name])
        if value is not None and typing.get_origin(tp) is tuple and isinstance(value, list):
            value = tuple(value)
        if value is not None and tp is Path:
            value = Path(value)
        coerced[name] = value
    try:
        return cls(**coerced)
    except TypeError as exc:
        raise UniarmError(f"bad settings for {cls.__name__}: {exc}") from exc


def from_namespace(cls: type[T], args: argparse.Namespace, base: dict[str, Any] | None = None) -> T:
    """Recipe values (`base`) overridden by every flag the user actually gave."""
    values = dict(base or {})
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return build(cls, values)


def load_recipe(path: str | Path | None, section: str | None = None) -> dict[str, Any]:
    """Read a YAML recipe (optionally one top-level section of it) as a plain dict."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise UniarmError(
            f"recipe file not found: {path}", "pass an existing YAML file to --recipe"
        )
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise UniarmError(f"recipe {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise UniarmError(f"recipe {path} must be a mapping of setting: value")
    if section is not None:
        data = data.get(section, {}) or {}
    return data


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (paths as strings)."""
    out = {}
    for key, value in dataclasses.asdict(config).items():
        out[key] = str(value) if isinstance(value, Path) else value
    return out
