"""`uniarm info`: the smoke main job prints one line per data set and per task."""

from __future__ import annotations

from uniarm.cli import main


def test_info_without_model(data_root, capsys):
    assert main(["info", "--data-root", str(data_root), "--model", "none"]) == 0
    out = capsys.readouterr().out
    assert "model" not in out.split("\n")[0]
    assert "pku_saferlhf_10k_scored        2000 pairs, 1776 prompts" in out
    assert "scores agree 1996/1996 (4 ties)" in out
    assert "humor_colbert40k               40000 texts" in out
    assert "task   safety" in out and "task   assistant" in out


def test_info_with_a_model_folder(tiny_model_dir, data_root, capsys):
    assert main(["info", "--data-root", str(data_root), "--model", str(tiny_model_dir)]) == 0
    first = capsys.readouterr().out.split("\n")[0]
    assert first.startswith("model") and "LlamaForCausalLM" in first and "vocab 49152" in first


def test_info_missing_root_is_a_user_error(tmp_path, capsys):
    assert main(["info", "--data-root", str(tmp_path / "none"), "--model", "none", "-q"]) == 2
    assert "--data-root" in capsys.readouterr().err
