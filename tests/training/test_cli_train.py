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
        "--threads",
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
    assert main([*args, "-q", "--lr", "0.02", "--overwrite", "false"]) == 2  # -q after train
    assert "other settings" in capsys.readouterr().err
    assert main([*args, "--overwrite", "--lr", "0.02", "-q"]) == 0
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


def test_an_interrupted_run_is_called_unfinished_and_resumes(tmp_path, args, capsys, monkeypatch):
    from uniarm.training.checkpoint import RunFolder

    save = RunFolder.save_checkpoint

    def save_then_interrupt(self, *a, **kw):  # a Ctrl-C right after the first checkpoint
        save(self, *a, **kw)
        raise KeyboardInterrupt

    monkeypatch.setattr(RunFolder, "save_checkpoint", save_then_interrupt)
    assert main(["-q", *args, "--save-interval", "1"]) == 130
    monkeypatch.undo()
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "running" and run["step"] == 1  # as run.json records it
    capsys.readouterr()

    assert main(["-q", *args, "--save-interval", "1", "--lr", "0.02"]) == 2
    err = capsys.readouterr().err
    assert "holds an unfinished (interrupted) run with other settings: lr" in err
    assert "running run" not in err
    assert main(["-q", *args, "--save-interval", "1"]) == 0  # the same settings resume it
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "finished"
    assert main(["-q", *args, "--save-interval", "1", "--lr", "0.02"]) == 2
    assert "holds a finished run with other settings" in capsys.readouterr().err


def test_demo_names_its_own_output_flag(tmp_path, args, capsys, monkeypatch, data_root):
    """A demo folder whose training run has other settings (a --quick one, say): the fix names
    `uniarm demo --output`, not `uniarm train --output-dir`."""
    import types

    import uniarm.evaluation.run as evaluation_run

    demo = tmp_path / "demo"
    assert main(["-q", *args, "--output-dir", str(demo / "train-uniarm")]) == 0
    flags = dict(zip(args[1::2], args[2::2], strict=True))
    train = {flag.removeprefix("--").replace("-", "_"): value for flag, value in flags.items()}
    train = {k: v for k, v in train.items() if k not in ("output_dir", "data_root", "threads")}
    recipe = tmp_path / "demo.yaml"
    lines = [f"  {k}: {v}" for k, v in train.items()] + ["  lr: 0.02", "  num_threads: 1"]
    recipe.write_text("train:\n" + "\n".join(lines) + "\nevaluate:\n  num_prompts: 2\n")
    oracle = types.SimpleNamespace(name="never used: the demo stops at training")
    monkeypatch.setattr(evaluation_run, "load_task_oracle", lambda *a, **kw: oracle)

    command = ["-q", "demo", "--recipe", str(recipe), "--output", str(demo)]
    assert main([*command, "--data-root", str(data_root)]) == 2
    err = capsys.readouterr().err
    assert "holds a finished run with other settings: lr: 0.005 -> 0.02" in err
    assert "another --output," in err and "--output-dir" not in err
