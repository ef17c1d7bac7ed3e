"""Dataclass configs to CLI flags and YAML recipes, and back."""

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from conftest import Loaded, refuse_loading
from uniarm import config as cfg
from uniarm.errors import UniarmError

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


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


# --- recipes: flat, or one section per command ---------------------------------------------


def write(path, text):
    path.write_text(text)
    return path


def test_a_flat_recipe_is_the_settings_of_the_command_that_reads_it(tmp_path):
    flat = write(tmp_path / "flat.yaml", "steps: 10\nrate: 0.1\n")
    for section in ("train", "evaluate", "generate"):
        assert cfg.load_recipe(flat, section) == {"steps": 10, "rate": 0.1}
    assert cfg.load_recipe(flat) == {"steps": 10, "rate": 0.1}


def test_a_sectioned_recipe_gives_each_command_its_own_section(tmp_path):
    both = write(tmp_path / "r.yaml", "seeds: [0]\ntrain:\n  steps: 10\nevaluate:\n  rate: 0.2\n")
    assert cfg.load_recipe(both, "train") == {"steps": 10}
    assert cfg.load_recipe(both, "evaluate") == {"rate": 0.2}
    empty = write(tmp_path / "empty.yaml", "generate:\n")  # an empty section: no settings
    assert cfg.load_recipe(empty, "generate") == {}


def test_a_recipe_with_other_commands_sections_only_is_refused_naming_them(tmp_path):
    recipe = write(tmp_path / "r.yaml", "train:\n  steps: 10\nevaluate:\n  rate: 0.2\n")
    with pytest.raises(UniarmError) as info:
        cfg.load_recipe(recipe, "generate")
    assert "has the section(s) train:, evaluate: but no generate: section" in info.value.problem
    assert "add a generate: section" in info.value.fix
    bad = write(tmp_path / "bad.yaml", "generate: 3\n")
    with pytest.raises(UniarmError, match="generate: section .* must map setting: value"):
        cfg.load_recipe(bad, "generate")


def test_an_unknown_key_of_a_flat_recipe_is_refused_with_the_accepted_keys(tmp_path):
    recipe = write(tmp_path / "flat.yaml", "stpes: 10\n")
    with pytest.raises(UniarmError, match="unknown setting.*stpes") as info:
        cfg.build(Demo, cfg.load_recipe(recipe, "train"))
    assert info.value.fix == "use one of: flag, name, out, rate, steps, targets"


def test_a_recipe_key_may_use_a_fields_older_name_but_not_both():
    assert cfg.resolve_aliases({"base": "m", "x": 1}, {"base": "base_model"}) == {
        "base_model": "m",
        "x": 1,
    }
    with pytest.raises(UniarmError, match="both base_model and base"):
        cfg.resolve_aliases({"base": "m", "base_model": "n"}, {"base": "base_model"})


def test_every_recipe_in_the_repository_still_reads_for_its_commands():
    """The shipped train recipes are flat, the demo and compare ones sectioned."""
    from uniarm.cli.demo import demo_recipe
    from uniarm.cli.train import recipe_values
    from uniarm.training.config import TrainConfig

    recipes = sorted(RECIPES.glob("*.yaml"))
    flat = [r for r in recipes if not r.name.startswith(("compare-", "demo", "tune-"))]
    assert len(flat) >= 10
    for recipe in flat:  # flat: the whole file is TrainConfig settings
        values = recipe_values(recipe)
        assert values == yaml.safe_load(recipe.read_text()) and "method" in values
        assert cfg.build(TrainConfig, values).method == values["method"]
    for recipe in (r for r in recipes if r.name.startswith("demo")):
        train, evaluate = demo_recipe(recipe)
        assert train == cfg.load_recipe(recipe)["train"] and isinstance(evaluate, dict)


@pytest.fixture
def no_evaluation_loads(monkeypatch):
    """`uniarm evaluate` raises `Loaded` where it would load its oracle or a model."""
    import uniarm.evaluation.run as evaluation_run
    import uniarm.models

    monkeypatch.setattr(evaluation_run, "load_task_oracle", refuse_loading)
    monkeypatch.setattr(uniarm.models, "load_model", refuse_loading)
    monkeypatch.setattr(evaluation_run, "make_generator", refuse_loading)


def test_evaluate_reads_a_flat_recipe_and_refuses_a_train_one(
    tmp_path, no_evaluation_loads, capsys
):
    from uniarm.cli import main

    out = str(tmp_path / "out")

    # read, not ignored: its bad device is the refusal
    flat = write(tmp_path / "flat.yaml", "device: nodevice\nnum_prompts: 2\n")
    assert main(["evaluate", "--recipe", str(flat), "--output", out]) == 2
    assert "not a device" in capsys.readouterr().err

    train_recipe = RECIPES / "safety-uniarm.yaml"
    assert main(["evaluate", "--recipe", str(train_recipe), "--output", out]) == 2
    err = capsys.readouterr().err
    assert "unknown setting(s) for EvalConfig: " in err and "epochs" in err
    assert "use one of: " in err and "num_prompts" in err

    other = write(tmp_path / "gen.yaml", "generate:\n  max_new_tokens: 4\n")
    assert main(["evaluate", "--recipe", str(other), "--output", out]) == 2
    assert "has the section(s) generate: but no evaluate: section" in capsys.readouterr().err


def test_a_demo_recipe_needs_its_sections(tmp_path):
    from uniarm.cli.demo import demo_recipe

    train_recipe = RECIPES / "safety-uniarm.yaml"
    with pytest.raises(UniarmError, match="is not a demo recipe: it has alpha, batch_size"):
        demo_recipe(train_recipe)
    only_train = write(tmp_path / "d.yaml", "train:\n  lr: 0.01\n")
    assert demo_recipe(only_train) == ({"lr": 0.01}, {})


def test_to_dict_is_json_ready():
    assert cfg.to_dict(Demo(out=Path("a/b")))["out"] == "a/b"


def test_a_bool_flag_takes_both_forms():
    assert parse(["--flag"]).flag is True
    assert parse(["--flag", "--steps", "2"]) == Demo(flag=True, steps=2)  # not swallowed
    assert parse(["--steps", "2", "--flag"]) == Demo(flag=True, steps=2)
    for text, value in (("true", True), ("false", False), ("yes", True), ("0", False)):
        assert parse(["--flag", text]).flag is value
        assert parse([f"--flag={text}"]).flag is value
    assert parse(["--flag", "false"], base={"flag": True}).flag is False  # beats the recipe
    with pytest.raises(SystemExit):
        parse(["--flag", "maybe"])


def test_a_bool_flag_would_swallow_a_positional_after_it(capsys):
    """Why the sub-commands take no positionals (checked on the real parser below)."""
    parser = argparse.ArgumentParser()
    cfg.add_bool_argument(parser, "--flag", default=False)
    parser.add_argument("name")
    assert vars(parser.parse_args(["x", "--flag"])) == {"flag": True, "name": "x"}
    assert vars(parser.parse_args(["--flag", "no", "x"])) == {"flag": False, "name": "x"}
    with pytest.raises(SystemExit):
        parser.parse_args(["--flag", "x"])
    assert "expected true or false, got 'x'" in capsys.readouterr().err


def test_a_renamed_flag_keeps_the_field_name_as_alias():
    parser = argparse.ArgumentParser()
    cfg.add_arguments(parser, Demo, rename={"steps": "num_steps", "flag": "switch"})
    for argv in (["--num-steps", "4", "--switch"], ["--steps", "4", "--flag", "true"]):
        assert cfg.from_namespace(Demo, parser.parse_args(argv)) == Demo(steps=4, flag=True)
    assert "--num-steps NUM_STEPS, --steps NUM_STEPS" in parser.format_help()


def test_an_alias_flag_is_accepted_after_the_fields_own():
    parser = argparse.ArgumentParser()
    cfg.add_arguments(parser, Demo, aliases={"steps": ("num_steps",)})
    for argv in (["--steps", "4"], ["--num-steps", "4"]):
        assert cfg.from_namespace(Demo, parser.parse_args(argv)) == Demo(steps=4)
    assert "--steps STEPS, --num-steps STEPS" in parser.format_help()


def test_split_values_refuses_a_key_no_class_knows_naming_all_of_them():
    @dataclass
    class Other:
        beta: float = cfg.field(1.0, help="beta")

    assert cfg.split_values({"steps": 2, "beta": 0.5}, Demo, Other) == [
        {"steps": 2},
        {"beta": 0.5},
    ]
    with pytest.raises(UniarmError, match="unknown setting.*bta") as info:
        cfg.split_values({"bta": 0.5}, Demo, Other)
    assert info.value.fix == "use one of: beta, flag, name, out, rate, steps, targets"


# --- the `uniarm` command line built from these configs ---------------------------------------


def command_parsers():
    """(command words, parser) of every sub-command of `uniarm`, nested ones included."""
    from uniarm.cli import build_parser

    found, todo = [], [((), build_parser())]
    while todo:
        words, parser = todo.pop()
        found.append((words, parser))
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo += [((*words, name), sub) for name, sub in action.choices.items()]
    return found


REQUIRED = {  # the smallest valid command line of each sub-command that requires flags
    ("oracle", "score"): ["--input", "x.jsonl"],
    ("oracle", "report"): ["--oracle", "safety", "--output", "x.md"],
}


def test_every_bool_option_of_every_command_takes_both_forms():
    from uniarm.cli import build_parser

    parser, checked = build_parser(), set()
    for words, sub in command_parsers():
        for action in sub._actions:
            if action.metavar != "BOOL":
                continue
            dest, flag = action.dest, action.option_strings[0]
            argv = [*words, *REQUIRED.get(words, [])]
            assert getattr(parser.parse_args([*argv, flag]), dest) is True, (words, flag)
            assert getattr(parser.parse_args([*argv, flag, "false"]), dest) is False
            checked.add((" ".join(words), flag))
    overwrite = {"train", "generate", "evaluate", "demo", "compare", "oracle train"}
    assert {(words, "--overwrite") for words in overwrite} <= checked
    assert ("generate", "--do-sample") in checked and ("serve", "--chat-template") in checked
    assert ("demo", "--quick") in checked


def test_no_command_takes_a_positional_that_a_bool_flag_could_swallow():
    for words, sub in command_parsers():
        positionals = [
            a.dest
            for a in sub._actions
            if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
        ]
        assert positionals == [], words


def test_one_flag_name_per_concept_with_the_old_spellings_kept():
    from uniarm.cli import build_parser

    canonical = {words[0]: [a.option_strings[0] for a in sub._actions if a.option_strings]
                 for words, sub in command_parsers() if len(words) == 1}  # fmt: skip
    for command in ("train", "generate", "evaluate", "serve", "compare"):
        assert "--base-model" in canonical[command], command
    for command in ("train", "generate", "evaluate", "serve", "demo", "compare"):
        assert "--threads" in canonical[command], command
    assert not {"--base", "--num-threads"} & {f for flags in canonical.values() for f in flags}

    parser = build_parser()
    assert parser.parse_args(["generate", "--base", "m"]).base_model == "m"
    assert parser.parse_args(["generate", "--base-model", "m"]).base_model == "m"
    assert parser.parse_args(["train", "--num-threads", "2"]).num_threads == 2
    assert parser.parse_args(["train", "--threads", "2"]).num_threads == 2


@pytest.mark.parametrize(
    "argv, quiet, verbose",
    [
        (["train"], False, False),
        (["-q", "train"], True, False),
        (["train", "-q"], True, False),
        (["train", "--quiet", "--lr", "1"], True, False),
        (["-v", "generate", "-q"], True, True),
        (["oracle", "show", "-v"], False, True),
        (["oracle", "-q", "show"], True, False),
    ],
)
def test_quiet_and_verbose_before_or_after_the_command(argv, quiet, verbose):
    from uniarm.cli import build_parser

    args = build_parser().parse_args(argv)
    assert (args.quiet, args.verbose) == (quiet, verbose)


def test_evaluate_refuses_bad_settings_before_loading_anything(
    tmp_path, no_evaluation_loads, capsys
):
    import json

    from uniarm.cli import main

    out = tmp_path / "out"

    assert main(["evaluate", "--output", str(out), "--device", "nodevice"]) == 2
    assert "not a device" in capsys.readouterr().err

    out.mkdir()
    (out / "eval.json").write_text(json.dumps({"task": "safety", "num_prompts": 99}))
    assert main(["evaluate", "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds results of another run" in err and "--overwrite" in err
    with pytest.raises(Loaded):  # allowed: it gets as far as loading
        main(["evaluate", "--output", str(out), "--overwrite"])

    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(["evaluate", "--output", str(tmp_path / "other")]) == 2
    assert "is not a results folder" in capsys.readouterr().err


def test_oracle_report_refuses_an_existing_output_before_loading(tmp_path, monkeypatch, capsys):
    import uniarm.evaluation.oracles as oracles
    from uniarm.cli import main

    monkeypatch.setattr(oracles, "load_oracles", refuse_loading)
    out = tmp_path / "oracles.md"
    out.write_text("mine")
    command = ["oracle", "report", "--oracle", "safety", "--output", str(out)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"{out} already exists" in err and "--overwrite" in err
    assert main([*command, "--overwrite", "false"]) == 2 and out.read_text() == "mine"
    with pytest.raises(Loaded):  # allowed: it gets as far as loading the oracle
        main([*command, "--overwrite"])
    with pytest.raises(Loaded):  # a new file needs no --overwrite
        main(["oracle", "report", "--oracle", "safety", "--output", str(tmp_path / "new.md")])


def test_oracle_train_refuses_an_existing_report_file_before_training(
    tmp_path, monkeypatch, capsys
):
    import uniarm.evaluation.oracles.training as training
    from uniarm.cli import main

    monkeypatch.setattr(training, "train_oracle", refuse_loading)
    report = tmp_path / "oracles.md"
    report.write_text("mine")
    command = ["oracle", "train", "--output-dir", str(tmp_path / "oracle"), "--report", str(report)]
    assert main(command) == 2
    err = capsys.readouterr().err
    assert f"--report {report} already exists" in err and "--overwrite" in err
    assert report.read_text() == "mine"
    with pytest.raises(Loaded):  # allowed: it gets as far as training
        main([*command, "--overwrite"])
