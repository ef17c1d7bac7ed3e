"""Dataclass configuration shared by the CLI and the YAML recipes.

Each config is a dataclass whose fields carry a `help` string in their metadata and whose
`__post_init__` validates. `add_arguments` turns a dataclass into argparse flags,
`from_namespace` builds it back, and `load_recipe` reads a YAML recipe of the same fields,
so that nothing is written twice by hand.

A recipe is either flat, the settings of the one command that reads it (as every train recipe
in recipes/ is), or split into sections named after the commands (`train:`, `evaluate:`,
`generate:`), each command reading its own. A file with sections but not the one a command
reads is refused, naming the sections it has; an unknown key is refused with the known ones.

A bool field takes both forms on the command line: `--overwrite` alone means true, and
`--overwrite true` / `--overwrite false` still work. Such a flag would swallow a positional
argument written right after it, so the sub-commands take no positionals (a test checks it).
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

# The top-level keys of a recipe that name a command's section (see the module docstring).
COMMAND_SECTIONS = ("train", "evaluate", "generate")


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


def add_bool_argument(
    parser: Any,
    *flags: str,
    help: str = "",
    default: bool | None = None,
    **kwargs: Any,
) -> None:
    """A bool flag on `parser` (a parser or an argument group): alone it means true, and
    `--flag true|false` (or yes/no, on/off, 1/0) also works."""
    parser.add_argument(
        *flags,
        type=_parse_bool,
        nargs="?",
        const=True,
        default=default,
        metavar="BOOL",
        help=help,
        **kwargs,
    )


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    skip: tuple[str, ...] = (),
    rename: dict[str, str] | None = None,
    aliases: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Add one flag per field of dataclass `cls` (defaults are applied in `from_namespace`).

    Args:
        parser: the parser (or sub-command parser) to extend.
        cls: the config dataclass; each field's `help` metadata becomes the flag's help.
        skip: fields that get no flag.
        rename: field -> flag name, for a field whose CLI name differs from its own (one name
            per concept across the sub-commands); the field's own flag stays accepted.
        aliases: field -> older flag names, accepted after the field's own (`--base` for
            `base_model`).
    """
    hints = typing.get_type_hints(cls)
    group = parser.add_argument_group(cls.__name__)
    for f in dataclasses.fields(cls):
        if f.name in skip or not f.init:
            continue
        flags = [_flag(f.name)]
        if rename and f.name in rename:
            flags.insert(0, _flag(rename[f.name]))
        flags += [_flag(alias) for alias in (aliases or {}).get(f.name, ())]
        help = _with_default(f, f.metadata.get("help", ""))
        tp, _ = _unwrap_optional(hints[f.name])
        if tp is bool:
            add_bool_argument(group, *flags, dest=f.name, help=help)
            continue
        origin = typing.get_origin(tp)
        kwargs: dict[str, Any] = {"help": help, "default": None}
        if origin in (list, tuple):
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
        if len(flags) > 1:
            kwargs.setdefault("metavar", flags[0].removeprefix("--").replace("-", "_").upper())
        group.add_argument(*flags, dest=f.name, **kwargs)


def _with_default(f: dataclasses.Field, help: str) -> str:
    """The help text followed by the field's default, unless it names its own (e.g. "the
    method's")."""
    default = _default_of(f)
    if default is dataclasses.MISSING or not help or "default" in help:
        return help
    return f"{help} (default: {default})"


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


def split_values(values: dict[str, Any], *classes: type) -> list[dict[str, Any]]:
    """Split one recipe section among several dataclasses by field name, in their order.

    A key no class knows is refused with every key that the classes accept together.
    """
    names = [{f.name for f in dataclasses.fields(cls) if f.init} for cls in classes]
    known = set().union(*names)
    unknown = sorted(set(values) - known)
    if unknown:
        raise UniarmError(
            f"unknown setting(s): {', '.join(unknown)}", f"use one of: {', '.join(sorted(known))}"
        )
    return [{k: v for k, v in values.items() if k in fields} for fields in names]


def resolve_aliases(values: dict[str, Any], aliases: dict[str, str]) -> dict[str, Any]:
    """Recipe keys under an older name (alias -> name) given their present name; an alias
    given beside its name is refused, since one of the two would be dropped."""
    out = dict(values)
    for alias, name in aliases.items():
        if alias not in out:
            continue
        if name in out:
            raise UniarmError(
                f"both {name} and {alias} (its older name) are set", f"keep {name} only"
            )
        out[name] = out.pop(alias)
    return out


def from_namespace(cls: type[T], args: argparse.Namespace, base: dict[str, Any] | None = None) -> T:
    """Recipe values (`base`) overridden by every flag the user actually gave."""
    values = dict(base or {})
    for f in dataclasses.fields(cls):
        given = getattr(args, f.name, None)
        if given is not None:
            values[f.name] = given
    return build(cls, values)


def load_recipe(path: str | Path | None, section: str | None = None) -> dict[str, Any]:
    """Read a YAML recipe as a plain dict; with `section`, the settings of that command.

    A file without command sections is flat and is returned whole; a file with sections must
    have `section` (see the module docstring). The caller's `build` refuses unknown keys.
    """
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
    if section is None:
        return data
    return recipe_section(data, section, path)


def recipe_section(data: dict[str, Any], section: str, path: Path) -> dict[str, Any]:
    """The settings of command `section` in a recipe's contents `data`: the whole flat file, or
    its `section:` part; a file with other commands' sections only is refused."""
    found = [name for name in dict.fromkeys((*COMMAND_SECTIONS, section)) if name in data]
    if not found:
        return data
    if section not in data:
        raise UniarmError(
            f"recipe {path} has the section(s) {', '.join(f'{n}:' for n in found)} but no "
            f"{section}: section, which `uniarm {section}` reads",
            f"add a {section}: section, or pass a flat recipe of {section} settings only",
        )
    values = data[section] or {}
    if not isinstance(values, dict):
        raise UniarmError(f"the {section}: section of recipe {path} must map setting: value")
    return values


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config (paths as strings)."""
    out = {}
    for key, value in dataclasses.asdict(config).items():
        out[key] = str(value) if isinstance(value, Path) else value
    return out
