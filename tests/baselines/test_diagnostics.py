"""Comparison diagnostics: replies against the base model's, and the logged accuracy."""

import pytest

from uniarm.baselines.diagnostics import logged_accuracy, method_diagnostics, reply_movement
from uniarm.io import append_jsonl


def sweep(folder, rows):
    folder.mkdir(parents=True)
    append_jsonl(
        folder / "generations.jsonl",
        [{"prompt_id": p, "preference_key": k, "response": r} for p, k, r in rows],
    )
    return folder


BASE = [("a", "base", "no"), ("b", "base", "sure")]
# prompt a: 1 of 3 replies is the base's, 2 distinct; prompt b: all 3 the base's, 1 distinct
GUIDED = [
    ("a", "1/0", "no"),
    ("a", "0.5/0.5", "maybe"),
    ("a", "0/1", "maybe"),
    ("b", "1/0", "sure"),
    ("b", "0.5/0.5", "sure"),
    ("b", "0/1", "sure"),
]


def test_reply_movement_by_hand(tmp_path):
    from uniarm.baselines.diagnostics import replies

    base = replies(sweep(tmp_path / "base", BASE))
    guided = replies(sweep(tmp_path / "guided", GUIDED))
    moved = reply_movement(base, guided)
    assert moved == {"same_as_base": 4 / 6, "distinct_per_prompt": 1.5, "rows": 6}
    assert reply_movement(base, base)["same_as_base"] == 1.0


def test_method_diagnostics_average_the_seeds_and_read_the_last_eval(tmp_path):
    base = sweep(tmp_path / "base", BASE)
    seed0 = sweep(tmp_path / "s0", GUIDED)
    seed1 = sweep(tmp_path / "s1", [(p, k, "other") for p, k, _ in GUIDED])  # nothing shared
    runs = []
    for seed, (first, last) in enumerate([(0.25, 0.5), (0.5, 0.75)]):
        run = tmp_path / f"run{seed}"
        run.mkdir()
        append_jsonl(
            run / "metrics.jsonl",
            [
                {"kind": "eval", "step": 2, "accuracy/helpful": first, "accuracy/harmless": 0.0},
                {"kind": "train", "step": 3, "loss": 1.0},
                {"kind": "eval", "step": 4, "accuracy/helpful": last, "accuracy/harmless": 1.0},
            ],
        )
        runs.append(run)
    found = method_diagnostics(base, [seed0, seed1], runs, pairs=8)
    assert found["same_as_base"] == pytest.approx((4 / 6 + 0) / 2)
    assert found["distinct_per_prompt"] == pytest.approx((1.5 + 1.0) / 2)
    accuracy = found["heldout_accuracy"]
    assert accuracy["mean"] == {"helpful": 0.625, "harmless": 1.0} and accuracy["pairs"] == 8
    assert method_diagnostics(base, [seed0], [], None)["heldout_accuracy"] is None


def test_a_run_without_eval_has_no_accuracy(tmp_path):
    assert logged_accuracy(tmp_path) is None
    append_jsonl(tmp_path / "metrics.jsonl", [{"kind": "train", "step": 1, "loss": 0.5}])
    assert logged_accuracy(tmp_path) is None
