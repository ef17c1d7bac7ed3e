"""bench/sweep.py on a tiny model: the step timers, and the benchmark end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
import torch
from bench_helpers import BENCH, load_bench


def test_step_timer_splits_prefill_from_decoding_and_keeps_the_rest_as_other():
    bench = load_bench("sweep")
    timer = bench.StepTimer()

    def forward(input_ids, *rest):
        time.sleep(0.01 * input_ids.shape[1])
        return input_ids

    timed = timer.wrap(forward, "base", split_prefill=True)
    timed(torch.zeros(1, 3))  # a prefill of 3 tokens
    timed(torch.zeros(2, 1))  # a decoding step
    timed(torch.zeros(2, 1))
    parts = timer.take(total=1.0)
    assert 0.03 <= parts["base_prefill"] < 0.3  # sleeps never end early; a busy machine: late
    assert 0.02 <= parts["base_decode"] < 0.3
    rest = 1.0 - parts["base_prefill"] - parts["base_decode"]
    assert parts["other"] == pytest.approx(rest, abs=2e-3)  # each part rounded to 1 ms
    assert timer.take_rows() == {"base": 1}  # the prefill's one row; decoding rows not counted
    assert timer.take(total=0.0) == {"other": 0.0}  # taking clears
    assert timer.take_rows() == {}


def test_sweep_ratios_are_the_merged_time_over_each_method():
    bench = load_bench("sweep")
    metrics = [
        {"prompts": 2, "method": "merged", "seconds": 9.0, "parts_s": {}},
        {"prompts": 2, "method": "sweep", "seconds": 3.0, "parts_s": {"arm_prefill": 1.5}},
        {"prompts": 2, "method": "sweep-unshared", "seconds": 4.5, "parts_s": {}},
    ]
    (row,) = bench.add_sweep_ratios(metrics)
    assert row == {
        "prompts": 2,
        "sweep_speedup": 3.0,
        "sweep-unshared_speedup": 2.0,
        "sweep_arm_prefill_fraction": 0.5,
    }


@pytest.mark.slow
def test_sweep_benchmark_runs_end_to_end(tmp_path, tiny_model_dir):
    out = tmp_path / "results"
    command = [sys.executable, str(BENCH / "sweep.py"), "--quick", "--model", str(tiny_model_dir),
               "--prompts", "2", "--new-tokens", "3", "--output-dir", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    report = json.loads((out / "sweep-quick.json").read_text())
    assert {"command", "date", "machine", "settings", "metrics", "ratios"} <= set(report)
    by = {m["method"]: m for m in report["metrics"]}
    assert set(by) == {"sweep", "sweep-unshared", "merged"}
    for m in by.values():
        assert m["rows"] == 22 and m["new_tokens"] == 22 * 3  # no EOS: every row runs full length
    assert by["merged"]["batch_size"] == 2 and by["sweep"]["batch_size"] == 22
    # the sweep prefills the base model once per prompt, the others once per row; the
    # unmerged ARM prefills every row
    assert by["sweep"]["prefill_rows"] == {"base": 2, "arm": 22}
    assert by["sweep-unshared"]["prefill_rows"] == {"base": 22, "arm": 22}
    assert by["merged"]["prefill_rows"] == {"base": 22, "arm": 22}
    (ratios,) = report["ratios"]
    assert ratios["sweep_speedup"] == pytest.approx(
        by["merged"]["seconds"] / by["sweep"]["seconds"], abs=1e-3
    )
    assert "| 2 | sweep |" in (out / "sweep-quick.md").read_text()


def test_step_timer_install_times_the_loops_own_calls(tokenizer, monkeypatch):
    # The timer replaces functions of the decoding loop's module; were the loop to stop looking
    # them up there (a move of code), their time would silently land in "other".
    import uniarm.decoding.loop as loop
    from conftest import make_tiny_llama
    from uniarm.adapters import AdapterConfig, PreferenceARM
    from uniarm.decoding import DecodingConfig, GuidedDecoder, PreferenceGuide

    for name in ("guided_log_probs", "choose_tokens"):
        monkeypatch.setattr(loop, name, getattr(loop, name))  # restored after the test
    base = make_tiny_llama(tokenizer, seed=0).eval()
    arm = PreferenceARM(make_tiny_llama(tokenizer, seed=1), tokenizer, ("helpful", "harmless"),
                        AdapterConfig(adapter="moslora"))  # fmt: skip
    guides = [PreferenceGuide(arm.eval(), merge="never")]
    decoder = GuidedDecoder(base, tokenizer, guides, DecodingConfig(max_new_tokens=4))
    timer = load_bench("sweep").StepTimer()
    timer.install(decoder)
    decoder.generate(["Hi", "Hello there"], [{"helpful": 1.0}, {"harmless": 1.0}])
    calls = timer.seconds
    assert {"base_prefill", "base_decode", "arm_prefill", "arm_decode"} <= set(calls)
    assert calls["guided_log_probs"] > 0 and calls["choose_tokens"] > 0
    assert timer.take_rows() == {"arm": 2, "base": 2}
