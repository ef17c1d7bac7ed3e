"""The sweep's bookkeeping: resuming, one run per folder, summaries from the stored scores."""

import json

import numpy as np
import pytest

from uniarm.errors import UniarmError
from uniarm.evaluation.config import EvalConfig
from uniarm.evaluation.metrics import hypervolume
from uniarm.evaluation.sweep import evaluate


class LengthOracle:
    """Scores a reply by its length (helpful) and by its count of 'safe' words (harmless)."""

    name = "length-test-oracle"
    objectives = ("helpful", "harmless")

    def score(self, prompts, responses, batch_size=16):
        return np.array([[len(r) / 10, r.count("safe")] for r in responses], dtype=float)


class Writer:
    """Writes replies whose length grows with the helpful weight; can fail after n calls."""

    def __init__(self, fail_after=None):
        self.calls, self.rows, self.fail_after = 0, 0, fail_after

    def __call__(self, conversations, preferences):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.rows += len(conversations)
        if preferences is None:
            return ["plain reply" for _ in conversations]
        return ["x" * int(10 * p[0]) + " safe" * int(5 * p[1]) for p in preferences]


def config(tmp_path, data_root, **kw):
    values = dict(
        task="safety",
        method="test",
        arm=tmp_path / "arm",
        data_root=data_root,
        num_prompts=5,
        prompts_per_chunk=2,
        output=tmp_path / "out",
    )
    return EvalConfig(**{**values, **kw})


def test_sweep_summary_and_resume_after_interruption(tmp_path, data_root):
    with pytest.raises(KeyboardInterrupt):
        evaluate(config(tmp_path, data_root), Writer(fail_after=1), LengthOracle(), quiet=True)
    lines = (tmp_path / "out" / "generations.jsonl").read_text().splitlines()
    assert len(lines) == 2 * 11  # the first chunk of 2 prompts survived

    writer = Writer()
    outcome = evaluate(config(tmp_path, data_root), writer, LengthOracle(), quiet=True)
    assert writer.rows == 3 * 11  # only the missing prompts were decoded
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary == outcome.summary and len(summary["points"]) == 11
    # Every prompt gets the same reply at one preference: its length / 10 and its "safe"s.
    points = np.array([p["scores"] for p in summary["points"]])
    prefs = np.array([p["preference"] for p in summary["points"]])
    xs, safes = np.floor(10 * prefs[:, 0] + 1e-9), np.floor(5 * prefs[:, 1] + 1e-9)
    expected = np.stack([(xs + 5 * safes) / 10, safes], axis=1)
    np.testing.assert_allclose(points, expected)
    assert summary["hypervolume"] == pytest.approx(hypervolume(points, summary["reference"]))
    mip = np.mean(np.sum(prefs * points, axis=1))
    assert summary["mean_inner_product"] == pytest.approx(mip)
    assert summary["oracle"] == "length-test-oracle"


def test_base_model_alone_has_one_point_scored_over_the_grid(tmp_path, data_root):
    outcome = evaluate(
        config(tmp_path, data_root, arm=None, method="base"), Writer(), LengthOracle(), quiet=True
    )
    s = outcome.summary
    assert len(s["points"]) == 1 and s["points"][0]["label"] == "base" and len(s["grid"]) == 11
    v = np.array(s["points"][0]["scores"])
    np.testing.assert_allclose(v, [1.1, 0.0])
    assert s["mean_inner_product"] == pytest.approx(np.mean([p[0] * 1.1 for p in s["grid"]]))


def test_a_folder_of_another_run_is_refused_then_moved_aside(tmp_path, data_root):
    evaluate(config(tmp_path, data_root), Writer(), LengthOracle(), quiet=True)
    with pytest.raises(UniarmError, match="holds results of another run.*num_prompts"):
        evaluate(config(tmp_path, data_root, num_prompts=4), Writer(), LengthOracle())
    evaluate(
        config(tmp_path, data_root, num_prompts=4, overwrite=True),
        Writer(),
        LengthOracle(),
        quiet=True,
    )
    assert len(list(tmp_path.glob("out.old-*"))) == 1


def test_oracle_must_cover_the_task(tmp_path, data_root):
    class Wrong(LengthOracle):
        objectives = ("helpful", "humor")

    with pytest.raises(UniarmError, match="the safety task needs"):
        evaluate(config(tmp_path, data_root), Writer(), Wrong())


def test_reference_of_the_wrong_dimension(tmp_path, data_root):
    with pytest.raises(UniarmError, match="has 3 values but the safety task has 2"):
        config(tmp_path, data_root, reference=(0, 0, 0))


def test_reference_points_lie_below_the_teachers_recorded_scores(data_root):
    from uniarm.data import load_dataset_by_name
    from uniarm.evaluation.config import REFERENCE_POINTS
    from uniarm.objectives import get_task

    for task, name in (("safety", "pku_saferlhf_10k_scored"), ("assistant", "hh_rlhf_scored500")):
        pairs = load_dataset_by_name(name, data_root)
        for objective, ref in zip(get_task(task).objectives, REFERENCE_POINTS[task], strict=True):
            scores = [s for p in pairs for s in p.scores[objective]]
            assert ref <= np.percentile(scores, 1), (task, objective)
            assert ref >= np.percentile(scores, 0) - 5  # not so low that HV is all offset


def test_a_lone_process_decodes_on_the_configured_device(tmp_path, data_root, monkeypatch):
    from uniarm.evaluation import run

    seen = []

    def generator_on(config, device):
        seen.append(device)
        return Writer()

    monkeypatch.setattr(run, "make_generator", generator_on)
    cfg = config(tmp_path, data_root, device="cuda:1")
    run.run_evaluation(cfg, oracle=LengthOracle(), quiet=True)
    assert seen == ["cuda:1"]
    # the device does not decide the results: the same folder resumes on another one
    again = run.run_evaluation(
        config(tmp_path, data_root, device="cpu"), oracle=LengthOracle(), quiet=True
    )
    assert seen == ["cuda:1", "cpu"] and again.summary["hypervolume"] > 0


def test_a_run_is_labelled_by_its_checkpoint_or_as_the_base_model(tmp_path):
    assert EvalConfig(task="safety").method == "base"
    arm = tmp_path / "arm"
    arm.mkdir()
    (arm / "arm.json").write_text(json.dumps({"method": "parm"}))
    labelled = EvalConfig(task="safety", arm=arm)
    assert labelled.method == "parm" and labelled.output.name == "safety-parm"
    assert EvalConfig(task="safety", arm=arm, method="mine").method == "mine"
    with pytest.raises(UniarmError, match="checkpoint not found"):
        EvalConfig(task="safety", arm=tmp_path / "missing")


def test_compare_refuses_to_replace_an_earlier_comparison(tmp_path, data_root):
    from uniarm.cli import main

    for name in ("a", "b"):
        evaluate(config(tmp_path, data_root, output=tmp_path / name), Writer(), LengthOracle())
    out = tmp_path / "cmp"
    args = ["-q", "evaluate", "--compare", str(tmp_path / "a"), str(tmp_path / "b")]
    assert main([*args, "--output", str(out)]) == 0
    before = (out / "report.md").read_text()
    assert main([*args[:-1], "--output", str(out)]) == 2  # another comparison: refused
    assert (out / "report.md").read_text() == before
    assert main([*args[:-1], "--output", str(out), "--overwrite", "true"]) == 0
    assert (out / "report.md").read_text() != before
