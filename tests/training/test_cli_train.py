"""`uniarm train` on the real safety data with a tiny model: train, reuse, refuse, overwrite."""

import json

import pytest
from training_helpers import save_tiny_model

from uniarm.cli import main


@pytest.fixture
def args(tmp_path, tokenizer, data_root):
    model_dir = save_tiny_model(tmp_path / "model", tokenizer)
    return [
        "train",
        "--base-model",
        str(model_dir),
        "--data-root",
        str(data_root),
        "--num-pairs",
        "8",
        "--eval-pairs",
        "4",
        "--max-steps",
        "2",
        "--batch-size",
        "2",
        "--grad-accumulation",
        "1",
        "--max-prompt-tokens",
        "64",
        "--max-response-tokens",
        "16",
        "--num-threads",
        "1",
        "--output-dir",
        str(tmp_path / "run"),
    ]


@pytest.mark.parametrize("method", ["uniarm", "parm", "genarm"])
def test_train_writes_a_checkpoint(tmp_path, args, capsys, method):
    assert main(["-q", *args, "--method", method]) == 0
    out = capsys.readouterr().out.strip()
    assert out == str(tmp_path / "run" / "arm")
    manifest = "genarm.json" if method == "genarm" else "arm.json"
    meta = json.loads((tmp_path / "run" / "arm" / manifest).read_text())
    assert meta["method"] == method and meta["objectives"] == ["helpful", "harmless"]
    assert meta["training"]["task"] == "safety" and meta["training"]["train_pairs"] == 8
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert [r["step"] for r in rows if r["kind"] == "train"] == [1, 2]
    assert [r["kind"] for r in rows][-1] == "eval"


def test_rerun_reuses_other_settings_are_refused(tmp_path, args, capsys):
    assert main(["-q", *args]) == 0
    assert main(["-q", *args]) == 0  # finished: reused
    capsys.readouterr()
    assert main(["-q", *args, "--lr", "0.02"]) == 2
    err = capsys.readouterr().err
    assert "other settings: lr: 0.005 -> 0.02" in err and "--overwrite" in err
    assert main(["-q", *args, "--lr", "0.02", "--overwrite"]) == 0
    assert json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["lr"] == 0.02


def test_recipe_then_flags(tmp_path, args, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  method: parm\n  lr: 0.02\n  max_steps: 5\n")
    assert main(["-q", *args, "--recipe", str(recipe)]) == 0  # --max-steps 2 wins
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["settings"]["method"] == "parm" and run["settings"]["lr"] == 0.02
    assert run["total_steps"] == 2


def test_bad_flags_fail_with_a_clear_error(args, capsys):
    assert main(["-q", *args, "--method", "parm", "--global-weight", "0.5"]) == 2
    assert "has no global loss" in capsys.readouterr().err
    assert main(["-q", *args, "--target-modules", "query"]) == 2
    assert "no linear layer of the model matches" in capsys.readouterr().err
