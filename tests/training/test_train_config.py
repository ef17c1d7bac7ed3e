"""TrainConfig: method defaults, validation, recipes and CLI flags."""

import argparse
from pathlib import Path

import pytest

from uniarm.cli.train import recipe_values
from uniarm.config import add_arguments, build, from_namespace
from uniarm.errors import UniarmError
from uniarm.training import TrainConfig

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


def test_method_defaults():
    uniarm = TrainConfig(method="uniarm")
    shapes = uniarm.adapter_settings()
    assert (shapes.adapter, shapes.rank_shared, shapes.rank_modulation, shapes.alpha) == (
        "moslora",
        4,
        4,
        8.0,
    )
    assert uniarm.global_loss_weight == 0.5
    assert TrainConfig(method="uniarm", task="assistant").global_loss_weight == 0.2
    assert TrainConfig(method="uniarm-noglobal").global_loss_weight == 0.0
    modonly = TrainConfig(method="uniarm-modonly")
    assert (modonly.adapter_settings().rank_shared, modonly.adapter_settings().rank_modulation) == (
        0,
        8,
    )
    assert modonly.global_loss_weight == 0.0
    parm = TrainConfig(method="parm")
    assert parm.adapter_settings().adapter == "pblora" and parm.global_loss_weight == 0.0
    genarm = TrainConfig(method="genarm").adapter_settings()
    assert (genarm.rank, genarm.alpha) == (8, 16.0)
    assert TrainConfig(method="genarm", task="assistant").task_objectives == (
        "helpful",
        "harmless",
        "humor",
    )


def test_resolved_settings_ignore_where_the_run_lives():
    a = TrainConfig(output_dir=Path("/tmp/a"), log_interval=3, num_threads=1)
    b = TrainConfig(output_dir=Path("/tmp/b"), rank_shared=4, global_weight=0.5)
    assert a.result_settings() == b.result_settings()  # explicit defaults change nothing
    assert TrainConfig(lr=1e-3).result_settings() != a.result_settings()
    assert a.resolved()["adapter"]["rank_shared"] == 4


@pytest.mark.parametrize(
    "values,message",
    [
        ({"method": "dpo"}, "unknown method"),
        ({"task": "chat"}, "unknown task"),
        ({"objectives": ["humor"]}, "not a subset"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"lr": 0}, "lr must be > 0"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"max_response_tokens": 1}, "max_response_tokens"),
        ({"method": "parm", "global_weight": 0.5}, "has no global loss"),
        ({"method": "uniarm-noglobal", "global_weight": 0.2}, "has no global loss"),
        ({"method": "genarm", "rank_shared": 4}, "genarm has no rank_shared"),
        ({"method": "uniarm", "lora_rank": 8}, "has no lora_rank"),
        ({"method": "uniarm-modonly", "rank_shared": 4}, "no shared module"),
        ({"rank_shared": 0, "rank_modulation": 0}, "nothing to train"),
        ({"method": "parm", "rank_modulation": 0}, "PBLoRA needs"),
        ({"target_modules": []}, "no target modules"),
        ({"mixed_precision": "fp16"}, "mixed_precision"),
    ],
)
def test_bad_settings_are_refused(values, message):
    with pytest.raises(UniarmError, match=message):
        build(TrainConfig, values)


def test_unknown_recipe_key_is_refused(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("method: uniarm\nlearning_rate: 0.1\n")
    with pytest.raises(UniarmError, match="unknown setting"):
        build(TrainConfig, recipe_values(recipe))


def test_flags_override_the_recipe(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "train:\n  method: parm\n  lr: 0.01\n  objectives: [harmless]\nevaluate: {}\n"
    )
    parser = argparse.ArgumentParser()
    add_arguments(parser, TrainConfig)
    args = parser.parse_args(["--lr", "0.002", "--num-pairs", "0"])
    config = from_namespace(TrainConfig, args, base=recipe_values(recipe))
    assert (config.method, config.lr, config.num_pairs) == ("parm", 0.002, 0)
    assert config.objectives == ("harmless",)


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.yaml")))
def test_every_recipe_builds_a_valid_config(recipe):
    values = recipe_values(RECIPES / recipe)
    config = build(TrainConfig, values)
    if recipe.startswith(("safety-", "assistant-")):  # the paper's settings
        effective = config.batch_size * config.grad_accumulation
        assert effective == 32 and config.lr == 1e-2 and config.num_pairs == 0
