"""The study's parts without models: stage manifest, scale recipes, seed spreads, results files."""

import json
import math

import pytest

from uniarm.baselines.results import compare_pair, paper_gain, spread, write_results
from uniarm.baselines.stages import StageManifest
from uniarm.baselines.study import StudyConfig, resolve_settings, results_stem
from uniarm.errors import UniarmError


def test_a_finished_stage_is_reused_and_an_interrupted_one_runs_again(tmp_path):
    calls = []
    manifest = StageManifest(tmp_path / "study", {"task": "safety"})

    def fails():
        calls.append("fail")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        manifest.run("train/x", fails)
    record = StageManifest(tmp_path / "study", {"task": "safety"}).stages["train/x"]
    assert record["status"] == "interrupted" and record["attempts"] == 1

    out = tmp_path / "out.txt"

    def works():
        calls.append("work")
        out.write_text("x")
        return {"path": str(out)}

    again = StageManifest(tmp_path / "study", {"task": "safety"})
    record = again.run("train/x", works)
    assert record["status"] == "done" and record["attempts"] == 2
    assert record["seconds"] >= record["last_seconds"]
    assert again.run("train/x", works) is record  # reused
    assert calls == ["fail", "work"]

    out.unlink()  # its output is gone: the stage runs again
    StageManifest(tmp_path / "study", {"task": "safety"}).run("train/x", works)
    assert calls == ["fail", "work", "work"]


def test_a_study_folder_keeps_one_identity(tmp_path):
    StageManifest(tmp_path / "s", {"task": "safety", "lr": 1}).run("a", lambda: {})
    with pytest.raises(UniarmError, match="differs in: lr"):
        StageManifest(tmp_path / "s", {"task": "safety", "lr": 2})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "file").write_text("x")
    with pytest.raises(UniarmError, match="holds no study manifest"):
        StageManifest(tmp_path / "other", {})


def test_scale_recipes_resolve_per_task(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "seeds: [3, 4]\ntrain: {num_pairs: 8, lr: 0.01}\nmethod_train: {genarm: {epochs: 1}}\n"
        "evaluate: {num_prompts: 2}\n"
        "tasks:\n  assistant:\n    train: {lr: 0.02}\n    evaluate: {edge_step: 0.5}\n"
        "    method_train: {genarm: {max_steps: 3}}\n"
    )
    safety = resolve_settings(StudyConfig(task="safety", recipe=recipe))
    assert safety.seeds == [3, 4] and safety.train == {"num_pairs": 8, "lr": 0.01}
    assistant = resolve_settings(StudyConfig(task="assistant", recipe=recipe, seeds=[9]))
    assert assistant.seeds == [9]
    assert assistant.train == {"num_pairs": 8, "lr": 0.02}
    assert assistant.evaluate == {"num_prompts": 2, "edge_step": 0.5}
    assert assistant.method_train == {"genarm": {"epochs": 1, "max_steps": 3}}
    for scale in ("tiny", "small", "paper"):  # the shipped recipes parse
        assert resolve_settings(StudyConfig(task="assistant", scale=scale)).seeds
    assert results_stem(StudyConfig(scale="small")) == "compare-safety"
    assert results_stem(StudyConfig(scale="tiny", task="assistant")) == "compare-assistant-tiny"
    with pytest.raises(UniarmError, match="unknown method"):
        StudyConfig(methods=["uniarm", "dpo"])


def test_seed_spread_and_verdicts_by_hand():
    s = spread([1.0, 2.0, 3.0])
    assert s["mean"] == 2.0 and s["std"] == pytest.approx(1.0) and s["n"] == 3
    assert spread([5.0])["std"] is None

    a = {"hypervolume": spread([10.0, 12.0])}  # mean 11, std sqrt(2)
    b = {"hypervolume": spread([9.0, 11.0])}  # mean 10, std sqrt(2)
    c = compare_pair(a, b, "hypervolume")
    assert c["difference"] == 1.0 and c["relative_pct"] == pytest.approx(10.0)
    assert c["spread"] == pytest.approx(2.0)  # sqrt(2 + 2)
    assert c["verdict"].startswith("within the seed spread")
    far = compare_pair({"hypervolume": spread([20.0, 20.5])}, b, "hypervolume")
    assert far["verdict"] == "ahead by more than the seed spread"
    one = compare_pair(
        {"hypervolume": spread([2.0])}, {"hypervolume": spread([1.0])}, "hypervolume"
    )
    assert one["verdict"].startswith("one seed")

    gain = paper_gain("safety", "uniarm", "parm")  # the paper's headline: +18.5% HV, +30.2% MIP
    assert round(gain["hypervolume_pct"], 1) == 18.5
    assert round(gain["mean_inner_product_pct"], 1) == 30.2
    assert paper_gain("assistant", "uniarm", "mod") is None


def fake_results(hv):
    point = {"preference": [1.0, 0.0], "label": "x", "mean": [1.0, 2.0], "std": [None, None]}
    entry = {
        "title": "t",
        "seeds": [0],
        "hypervolume": spread([hv]),
        "mean_inner_product": spread([0.5]),
        "trainable_parameters": 10,
        "training_seconds": spread([1.0]),
        "decoding_tokens_per_s": spread([3.0]),
        "points": [point, {**point, "preference": [0.0, 1.0]}],
    }
    return {
        "task": "safety",
        "objectives": ["helpful", "harmless"],
        "scale": "tiny",
        "oracle": "o",
        "reference": [0.0, 0.0],
        "grid": [[1.0, 0.0], [0.0, 1.0]],
        "num_prompts": 1,
        "settings": {
            "train": {},
            "evaluate": {},
            "dpo": {},
            "method_train": {},
            "seeds": [0],
            "base_model": "m",
            "split_seed": 0,
        },
        "methods": {"uniarm": entry},
        "claims": [],
        "weak_to_strong": {"status": "not run: no larger model"},
        "paper": {},
        "run": {"date": "now"},
    }


def test_results_are_never_replaced_silently(tmp_path):
    first = write_results(fake_results(1.0), tmp_path, "compare-safety")
    assert first["written"]
    assert {p.name for p in tmp_path.iterdir()} == {
        "compare-safety.json",
        "compare-safety.md",
        "compare-safety.png",
    }
    again = fake_results(1.0)
    again["run"] = {"date": "later"}  # only when and how it ran differ: nothing to write
    assert not write_results(again, tmp_path, "compare-safety")["written"]

    with pytest.raises(UniarmError, match="holds other results"):
        write_results(fake_results(2.0), tmp_path, "compare-safety")
    assert (
        json.loads((tmp_path / "compare-safety.json").read_text())["methods"]["uniarm"][
            "hypervolume"
        ]["mean"]
        == 1.0
    )

    write_results(fake_results(2.0), tmp_path, "compare-safety", overwrite=True)
    kept = sorted(p.name for p in tmp_path.iterdir() if ".old-" in p.name)
    assert len(kept) == 3  # json, md and png moved aside, not lost
    assert math.isclose(
        json.loads((tmp_path / "compare-safety.json").read_text())["methods"]["uniarm"][
            "hypervolume"
        ]["mean"],
        2.0,
    )
    text = (tmp_path / "compare-safety.md").read_text()
    assert "| uniarm | 2.000 | 0.500 | 1 | 10 |" in text and "not run" in text


def test_a_training_variant_is_its_method_with_settings_of_its_own(tmp_path, data_root):
    from uniarm.baselines.study import Study

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "seeds: [0]\ntrain: {num_pairs: 8}\nevaluate: {num_prompts: 2}\n"
        "method_train: {uniarm-centered: {lr: 0.02}}\n"
    )
    study = Study(
        StudyConfig(
            task="safety",
            recipe=recipe,
            methods=["uniarm", "uniarm-centered"],
            output=tmp_path / "study",
            data_root=data_root,
        )  # fmt: skip
    )
    assert study.trainings() == ["uniarm", "uniarm-centered"]  # two trainings, two folders
    plain, centered = study.train_config("uniarm", 0), study.train_config("uniarm-centered", 0)
    assert (plain.method, plain.objective_embedding) == ("uniarm", "mean")
    assert (centered.method, centered.objective_embedding) == ("uniarm", "centered")
    assert centered.lr == 0.02 and plain.lr != 0.02  # method_train still applies by its name
    assert plain.output_dir != centered.output_dir
