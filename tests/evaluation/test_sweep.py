"""The sweep's bookkeeping: resuming, one run per folder, summaries from the stored scores."""

import json
import logging
from pathlib import Path

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


def fake_arm(folder, objectives=("helpful", "harmless"), manifest="arm.json", method="test"):
    """A checkpoint folder holding only its manifest: what is read before any model loads."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / manifest).write_text(json.dumps({"method": method, "objectives": list(objectives)}))
    return folder


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
    fake_arm(tmp_path / "arm")
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


def _swept_prompt_ids(folder) -> set[str]:
    rows = (folder / "generations.jsonl").read_text().splitlines()
    return {json.loads(line)["prompt_id"] for line in rows}


def test_validation_prompts_can_be_swept_apart_from_the_test_prompts(tmp_path, data_root):
    from uniarm.data import task_splits

    splits = task_splits("safety", data_root)
    ids = {name: {p.prompt_id for p in part} for name, part in splits.items()}
    test_run = config(tmp_path, data_root, output=tmp_path / "test")
    valid_run = config(tmp_path, data_root, split="validation", output=tmp_path / "valid")
    evaluate(test_run, Writer(), LengthOracle(), quiet=True)
    evaluate(valid_run, Writer(), LengthOracle(), quiet=True)
    swept_test, swept_valid = (
        _swept_prompt_ids(tmp_path / "test"),
        _swept_prompt_ids(tmp_path / "valid"),
    )
    assert len(swept_test) == len(swept_valid) == 5
    assert swept_test <= ids["test"] and swept_valid <= ids["validation"]
    # A test run's identity is the one it had before the option existed (old folders resume);
    # a validation run's names its split, so the two never share a folder.
    assert "split" not in test_run.identity() and valid_run.identity()["split"] == "validation"
    with pytest.raises(UniarmError, match="holds results of another run.*split"):
        evaluate(config(tmp_path, data_root, output=tmp_path / "test", split="validation"),
                 Writer(), LengthOracle())  # fmt: skip
    with pytest.raises(UniarmError, match="unknown split 'train'"):
        config(tmp_path, data_root, split="train")


# Identity of a test run before `split` and the decoded count existed: old folders resume on it.
OLD_IDENTITY_KEYS = {
    "task", "method", "arm", "base_model", "split_seed", "num_prompts", "max_new_tokens",
    "beta", "edge_step", "interior_step", "oracle",
}  # fmt: skip
ASSISTANT = ("helpful", "harmless", "humor")


def test_a_request_beyond_the_split_records_the_prompts_decoded(tmp_path, data_root, caplog):
    asked = 500  # the safety test split holds fewer unique prompts
    with caplog.at_level(logging.WARNING, logger="uniarm.evaluation.sweep"):
        outcome = evaluate(config(tmp_path, data_root, num_prompts=asked), Writer(), LengthOracle())
    decoded = len(_swept_prompt_ids(tmp_path / "out"))
    assert 0 < decoded < asked
    marker = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert marker["num_prompts"] == outcome.summary["num_prompts"] == decoded
    assert (
        f"holds {decoded} prompts: decoding all of them, not the {asked} asked for" in caplog.text
    )

    # Another request the split cannot hold decodes the same prompts: the folder resumes.
    writer = Writer()
    evaluate(config(tmp_path, data_root, num_prompts=asked + 100), writer, LengthOracle())
    assert writer.rows == 0
    # So does a folder whose eval.json kept a count asked for (as sweeps recorded before);
    # its eval.json then records the count decoded.
    (tmp_path / "out" / "eval.json").write_text(json.dumps({**marker, "num_prompts": asked}))
    evaluate(config(tmp_path, data_root, num_prompts=asked + 100), writer, LengthOracle())
    assert writer.rows == 0
    assert json.loads((tmp_path / "out" / "eval.json").read_text())["num_prompts"] == decoded
    # A request the split holds decodes other prompts: refused.
    with pytest.raises(UniarmError, match="differs in: num_prompts"):
        evaluate(config(tmp_path, data_root, num_prompts=decoded - 1), writer, LengthOracle())


def test_a_request_that_fits_keeps_the_identity_old_folders_have(tmp_path, data_root):
    evaluate(config(tmp_path, data_root, num_prompts=5), Writer(), LengthOracle(), quiet=True)
    marker = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert set(marker) == OLD_IDENTITY_KEYS and marker["num_prompts"] == 5


def test_a_validation_run_has_its_own_default_folder():
    assert EvalConfig(task="safety").output == Path("runs/eval/safety-base")
    valid = EvalConfig(task="safety", split="validation")
    assert valid.output == Path("runs/eval/safety-base-validation")
    assert EvalConfig(task="safety", split="validation", output=Path("x")).output == Path("x")


def test_checkpoint_objectives_come_from_either_manifest(tmp_path):
    from uniarm.decoding.loading import checkpoint_objectives

    arm = fake_arm(tmp_path / "arm", ("helpful", "harmless"))
    genarm = fake_arm(tmp_path / "gen", ASSISTANT, "genarm.json", "genarm")
    assert checkpoint_objectives(arm) == ("helpful", "harmless")
    assert checkpoint_objectives(genarm) == ASSISTANT
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text(json.dumps({"method": "parm"}))
    assert checkpoint_objectives(bare) is None


REFUSED_ARMS = [
    ("assistant", ("helpful", "harmless"), "arm.json",
     "trained on helpful, harmless; the assistant task has helpful, harmless, humor",
     "--task safety"),
    ("safety", ASSISTANT, "genarm.json",
     "trained on helpful, harmless, humor; the safety task has helpful, harmless",
     "--task assistant"),
    ("safety", ("harmless", "helpful"), "arm.json", "in another order",
     "uniarm train --task safety"),
]  # fmt: skip


@pytest.mark.parametrize("task, objectives, manifest, message, fix", REFUSED_ARMS)
def test_an_arm_of_other_objectives_is_refused_before_anything_loads_or_is_written(
    tmp_path, data_root, monkeypatch, capsys, task, objectives, manifest, message, fix
):
    from uniarm.cli import main
    from uniarm.evaluation import run

    def must_not_load(*args, **kwargs):
        raise AssertionError("a model or oracle was loaded before the ARM was checked")

    monkeypatch.setattr(run, "make_generator", must_not_load)
    monkeypatch.setattr(run, "load_task_oracle", must_not_load)
    arm = fake_arm(tmp_path / "arm", objectives, manifest)
    out = tmp_path / "out"
    with pytest.raises(UniarmError, match=message) as refused:
        run.run_evaluation(config(tmp_path, data_root, task=task, arm=arm), quiet=True)
    assert fix in refused.value.fix
    assert not out.exists()

    argv = ["-q", "evaluate", "--task", task, "--arm", str(arm), "--output", str(out)]
    capsys.readouterr()
    assert main([*argv, "--data-root", str(data_root)]) == 2
    assert message in capsys.readouterr().err and not out.exists()
