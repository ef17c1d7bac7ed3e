"""Dataclass configs to CLI flags and YAML recipes, and back."""

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from uniarm import config as cfg
from uniarm.errors import UniarmError


@dataclass
class Demo:
    name: str = cfg.field("x", help="a name")
    steps: int = cfg.field(3, help="steps")
    rate: float = cfg.field(0.5, help="rate")
    flag: bool = cfg.field(False, help="a flag")
    targets: tuple[str, ...] = cfg.field(("q", "k"), help="targets")
    out: Path | None = cfg.field(None, help="output")

    def __post_init__(self):
        if self.steps < 1:
            raise UniarmError("steps must be >= 1")


def parse(argv, base=None):
    parser = argparse.ArgumentParser()
    cfg.add_arguments(parser, Demo)
    return cfg.from_namespace(Demo, parser.parse_args(argv), base)


def test_defaults_flags_and_recipe_layering(tmp_path):
    assert parse([]) == Demo()
    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps: 10\ntargets: [v]\nrate: 0.1\n")
    base = cfg.load_recipe(recipe)
    got = parse(["--rate", "0.2", "--flag", "true", "--out", "o"], base)
    assert got == Demo(steps=10, targets=("v",), rate=0.2, flag=True, out=Path("o"))


def test_unknown_recipe_key_and_validation(tmp_path):
    with pytest.raises(UniarmError, match="unknown setting.*stpes"):
        cfg.build(Demo, {"stpes": 2})
    with pytest.raises(UniarmError, match="steps must be"):
        parse(["--steps", "0"])
    with pytest.raises(UniarmError, match="not found"):
        cfg.load_recipe(tmp_path / "missing.yaml")


def test_to_dict_is_json_ready():
    assert cfg.to_dict(Demo(out=Path("a/b")))["out"] == "a/b"
