"""The whole comparison study on tiny models and real data: stages, reuse, results, refusals."""

import json

import pytest
from baselines_helpers import LengthOracle, peaked_llama

from conftest import make_tiny_llama
from uniarm.baselines import study as study_module
from uniarm.baselines.study import StudyConfig, run_study
from uniarm.errors import UniarmError
from uniarm.evaluation.config import REFERENCE_POINTS, EvalConfig

RECIPE = """
seeds: [0]
train: {num_pairs: 8, eval_pairs: 0, max_prompt_tokens: 32, max_response_tokens: 8,
        batch_size: 4, grad_accumulation: 1, max_steps: 1, warmup_ratio: 0.0, save_interval: 0}
dpo: {beta: 0.1}
evaluate: {num_prompts: 2, max_new_tokens: 3, batch_size: 8, prompts_per_chunk: 2,
           edge_step: 0.5}
"""
METHODS = ["base", "uniarm", "parm", "genarm", "mod", "rs"]


def model_folder(path, tokenizer, model):
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tokenizer, data_root):
    root = tmp_path_factory.mktemp("study")
    (root / "tiny.yaml").write_text(RECIPE)
    return {
        "root": root,
        "recipe": root / "tiny.yaml",
        "base": model_folder(root / "base", tokenizer, make_tiny_llama(tokenizer, seed=0)),
        "strong": model_folder(root / "strong", tokenizer, peaked_llama(tokenizer, hidden=64)),
        "data_root": data_root,
    }


def config(setup, **overrides):
    values = dict(
        task="safety",
        recipe=setup["recipe"],
        methods=METHODS,
        base_model=setup["base"],
        strong_base=setup["strong"],
        output=setup["root"] / "study",
        results_dir=setup["root"] / "results",
        data_root=setup["data_root"],
        threads=1,
    )
    values.update(overrides)
    return StudyConfig(**values)


@pytest.mark.slow
def test_the_study_end_to_end_then_reused(setup, monkeypatch):
    results = run_study(config(setup), oracle=LengthOracle(), quiet=True)
    files = setup["root"] / "results"
    assert sorted(p.name for p in files.iterdir()) == [
        "compare-safety-tiny-w2s.png",
        "compare-safety-tiny.json",
        "compare-safety-tiny.md",
        "compare-safety-tiny.png",
    ]
    assert json.loads((files / "compare-safety-tiny.json").read_text())["methods"].keys() == set(
        METHODS
    )
    methods = results["methods"]
    reference = list(EvalConfig(task="safety").reference_point)  # the task's, for every method
    assert results["reference"] == reference and results["oracle"] == "length-oracle (test)"

    # HV and MIP are the sweeps' own; the base model has one point and no training
    manifest = json.loads((setup["root"] / "study" / "manifest.json").read_text())["stages"]
    for method in METHODS[1:]:
        summary = json.loads(
            (setup["root"] / "study" / "eval" / f"{method}-seed0" / "summary.json").read_text()
        )
        assert methods[method]["hypervolume"]["per_seed"] == [summary["hypervolume"]]
        assert len(methods[method]["points"]) == 3  # (1, 0), (0.5, 0.5), (0, 1)
        assert methods[method]["decoding_tokens_per_s"]["mean"] > 0
    assert len(methods["base"]["points"]) == 1 and methods["base"]["trainable_parameters"] == 0

    # matched budgets: MoSLoRA and PBLoRA at r1 = r2 = 4 have the same count for k = 2;
    # MOD and RS share one DPO training (two LoRA r = 8 policies), as GenARM has two LoRA ARMs
    assert methods["uniarm"]["trainable_parameters"] == methods["parm"]["trainable_parameters"]
    lora = 2 * 8 * ((32 + 32) + 2 * (32 + 16))  # per model: 2 layers of q (32->32), k, v (32->16)
    assert methods["genarm"]["trainable_parameters"] == 2 * lora
    assert (
        methods["mod"]["trainable_parameters"] == methods["rs"]["trainable_parameters"] == 2 * lora
    )
    assert methods["mod"]["training_seconds"] == methods["rs"]["training_seconds"]
    assert "train/dpo-seed0" in manifest and "train/mod-seed0" not in manifest

    # weak-to-strong rows: the same ARMs, decoding with the larger base
    strong = results["weak_to_strong"]["methods"]
    assert set(strong) == {"base-w2s", "uniarm-w2s", "parm-w2s", "genarm-w2s"}
    assert strong["uniarm-w2s"]["base_model"] == setup["strong"]
    claims = {(c["method"], c["against"]) for c in results["claims"]}
    assert ("uniarm", "parm") in claims and ("uniarm-w2s", "parm-w2s") in claims

    # diagnostics for every method but the base, the base's own replies never counted as moved
    assert set(results["diagnostics"]) == set(METHODS) - {"base"}
    for d in results["diagnostics"].values():
        assert 0.0 <= d["same_as_base"] <= 1.0 and 1.0 <= d["distinct_per_prompt"] <= 3.0
    assert results["diagnostics"]["mod"]["heldout_accuracy"] is None
    assert "How far each method moved" in (files / "compare-safety-tiny.md").read_text()

    # a second run reuses every stage and leaves the results files as they are
    stamps = {p.name: p.stat().st_mtime_ns for p in files.iterdir()}
    monkeypatch.setattr("uniarm.training.train", lambda *a, **k: pytest.fail("trained again"))
    monkeypatch.setattr(
        "uniarm.evaluation.sweep.evaluate", lambda *a, **k: pytest.fail("evaluated again")
    )
    again = run_study(config(setup), oracle=LengthOracle(), quiet=True)
    assert again["methods"] == results["methods"]
    assert stamps == {p.name: p.stat().st_mtime_ns for p in files.iterdir()}

    # other results on the same files are refused, and kept
    with pytest.raises(UniarmError, match="holds other results"):
        run_study(config(setup, methods=["base", "uniarm"]), oracle=LengthOracle(), quiet=True)
    assert stamps == {p.name: p.stat().st_mtime_ns for p in files.iterdir()}

    # a new HV reference point for the task: the sweeps are summarised again, nothing decoded
    monkeypatch.undo()  # the real training and sweep functions again
    monkeypatch.setitem(REFERENCE_POINTS, "safety", (-50.0, -50.0))
    monkeypatch.setattr(
        "uniarm.baselines.replies.make_replier", lambda *a, **k: pytest.fail("decoded again")
    )
    moved = run_study(config(setup, overwrite=True), oracle=LengthOracle(), quiet=True)
    assert moved["reference"] == [-50.0, -50.0]
    assert all(e["reference"] == [-50.0, -50.0] for e in moved["methods"].values())
    assert len(list(files.glob("compare-safety-tiny.old-*.json"))) == 1  # kept, not lost


@pytest.mark.slow
def test_a_changed_setting_is_refused_before_any_work(setup, tmp_path, monkeypatch):
    recipe = tmp_path / "other.yaml"
    recipe.write_text(RECIPE.replace("max_new_tokens: 3", "max_new_tokens: 4"))
    study = config(setup, recipe=recipe, output=setup["root"] / "refused")
    (setup["root"] / "refused").mkdir()
    (setup["root"] / "refused" / "manifest.json").write_text(
        (setup["root"] / "study" / "manifest.json").read_text()
    )
    monkeypatch.setattr(study_module.Study, "run", lambda self: pytest.fail("ran"))
    with pytest.raises(UniarmError, match="differs in: evaluate"):
        run_study(study, oracle=LengthOracle(), quiet=True)


def test_a_custom_recipe_names_its_study_and_results(tmp_path):
    from uniarm.baselines.study import results_stem

    longer = StudyConfig(task="safety", recipe=tmp_path / "compare-longer.yaml")
    assert longer.profile == "longer" and results_stem(longer) == "compare-safety-longer"
    assert str(longer.folder) == "runs/compare/safety-longer"
    mine = StudyConfig(task="assistant", recipe=tmp_path / "mine.yaml")
    assert results_stem(mine) == "compare-assistant-mine"
    assert results_stem(StudyConfig(task="assistant")) == "compare-assistant"
