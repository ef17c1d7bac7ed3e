"""Overlaying sweeps: refused unless run alike, reports that state their settings and HV 0."""

import json

import pytest
from test_sweep import LengthOracle, Writer, config, fake_arm

from uniarm.cli import main
from uniarm.errors import UniarmError
from uniarm.evaluation.compare import compare
from uniarm.evaluation.sweep import evaluate


def sweep(tmp_path, data_root, name, **kw):
    """A finished sweep in tmp_path/<name>, labelled <name>."""
    folder = tmp_path / name
    oracle = kw.pop("oracle_object", LengthOracle())
    evaluate(config(tmp_path, data_root, method=name, output=folder, **kw), Writer(), oracle)
    return folder


def overlay(tmp_path, folders, **kw):
    out = tmp_path / "cmp"
    return compare(folders, out / "front.png", out / "report.md", "t", **kw), out


def test_sweeps_run_differently_are_refused_naming_each_difference(tmp_path, data_root):
    a = sweep(tmp_path, data_root, "a")
    b = sweep(tmp_path, data_root, "b", split="validation", num_prompts=2, max_new_tokens=8)
    with pytest.raises(UniarmError) as refused:
        overlay(tmp_path, [a, b])
    problem = str(refused.value)
    for each in ("split: a test, b validation", "prompts: a 5, b 2", "max_new_tokens: a 48, b 8"):
        assert each in problem
    assert "beta" not in problem.split("fix:")[0]  # alike: not named
    assert "--split, --num-prompts, --max-new-tokens" in refused.value.fix
    assert "--allow-mixed" in refused.value.fix
    assert not (tmp_path / "cmp").exists()

    _, out = overlay(tmp_path, [a, b], allow_mixed=True)
    report = (out / "report.md").read_text()
    assert (
        "Settings: beta 1, 11 preferences; differing (overlaid as asked): split (a test, "
        "b validation); prompts (a 5, b 2); max_new_tokens (a 48, b 8)."
    ) in report


def test_the_cli_refuses_mixed_sweeps_unless_allowed(tmp_path, data_root, capsys):
    a = sweep(tmp_path, data_root, "a")
    b = sweep(tmp_path, data_root, "b", beta=2.0)
    argv = ["-q", "evaluate", "--compare", str(a), str(b), "--output", str(tmp_path / "cmp")]
    assert main(argv) == 2
    assert "the sweeps were not run alike (beta: a 1.0, b 2.0)" in capsys.readouterr().err
    assert main([*argv, "--allow-mixed"]) == 0
    assert "beta (a 1, b 2)" in (tmp_path / "cmp" / "report.md").read_text()


def test_another_task_or_oracle_is_refused_even_when_mixing_is_allowed(tmp_path, data_root):
    class Other(LengthOracle):
        name = "another-oracle"

    a = sweep(tmp_path, data_root, "a")
    b = sweep(tmp_path, data_root, "b", oracle_object=Other())
    with pytest.raises(UniarmError, match="oracle: a length-test-oracle, b another-oracle") as e:
        overlay(tmp_path, [a, b], allow_mixed=True)
    assert "same oracle" in e.value.fix and "--allow-mixed" not in e.value.fix


def test_a_report_states_the_settings_behind_its_numbers(tmp_path, data_root):
    arm = fake_arm(tmp_path / "arm")
    a = sweep(tmp_path, data_root, "a", arm=arm, beta=2.0)
    base = sweep(tmp_path, data_root, "base", arm=None)  # beta does not apply to it
    _, out = overlay(tmp_path, [a, base])
    lines = (out / "report.md").read_text().splitlines()
    expected = (
        "Settings: test split, 5 prompts, max_new_tokens 48, beta 2, 11 preferences. "
        f"ARMs: a {arm}, base none (base model alone)."
    )
    assert expected in lines


def test_the_prompts_counted_are_those_decoded_not_those_recorded(tmp_path, data_root):
    a = sweep(tmp_path, data_root, "a")
    b = sweep(tmp_path, data_root, "b")
    # what a sweep recorded before when asked for more prompts than the split held
    for name in ("eval.json", "summary.json"):
        path = b / name
        path.write_text(json.dumps({**json.loads(path.read_text()), "num_prompts": 900}))
    _, out = overlay(tmp_path, [a, b])
    assert "5 prompts" in (out / "report.md").read_text()


def test_hv_zero_is_explained_in_the_report_and_the_summary_line(tmp_path, data_root, capsys):
    from uniarm.cli.evaluate import print_summary

    a = sweep(tmp_path, data_root, "a")
    summaries, out = overlay(tmp_path, [a], reference=(100.0, 100.0))
    assert summaries[0]["hypervolume"] == 0.0
    note = "HV 0: no point dominates the reference point (100, 100)"
    assert f"a — {note}." in (out / "report.md").read_text().splitlines()
    print_summary(summaries[0])
    assert f"note: {note}" in capsys.readouterr().out

    summaries, out = overlay(tmp_path, [a])  # the task's reference lies below every point
    assert summaries[0]["hypervolume"] > 0
    assert "HV 0" not in (out / "report.md").read_text()


def test_a_sweeps_own_report_uses_its_reference_and_explains_hv_zero(
    tmp_path, data_root, monkeypatch, capsys
):
    from uniarm.evaluation import run

    monkeypatch.setattr(run, "make_generator", lambda config, device: Writer())
    monkeypatch.setattr(run, "load_task_oracle", lambda *args: LengthOracle())
    arm, out = fake_arm(tmp_path / "arm"), tmp_path / "out"
    argv = ["-q", "evaluate", "--task", "safety", "--arm", str(arm), "--num-prompts", "3"]
    argv += ["--data-root", str(data_root), "--output", str(out), "--reference", "100", "100"]
    assert main(argv) == 0
    report = (out / "report.md").read_text()
    assert "| test | 0.000 |" in report and "(100.000, 100.000)" in report
    assert "Settings: test split, 3 prompts, max_new_tokens 48, beta 1, 11 preferences." in report
    assert f"ARM: {arm}." in report
    assert (
        "note: HV 0: no point dominates the reference point (100, 100)" in capsys.readouterr().out
    )


def test_two_sweeps_of_one_method_keep_their_own_rows(tmp_path, data_root, capsys):
    # Two seeds of one method: before, the second replaced the first in the plot's fronts and
    # the tables showed one name twice. Each is now named by its folder as well.
    seed0, seed1 = tmp_path / "seed0", tmp_path / "seed1"
    for folder in (seed0, seed1):
        evaluate(
            config(tmp_path, data_root, method="uniarm", output=folder), Writer(), LengthOracle()
        )
    summaries, out = overlay(tmp_path, [seed0, seed1])
    assert [s["label"] for s in summaries] == ["uniarm (seed0)", "uniarm (seed1)"]
    report = (out / "report.md").read_text()
    assert "| uniarm (seed0) |" in report and "| uniarm (seed1) |" in report
    argv = ["-q", "evaluate", "--compare", str(seed0), str(seed1), "--output", str(tmp_path / "c")]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "uniarm (seed0)  HV" in printed and "uniarm (seed1)  HV" in printed
