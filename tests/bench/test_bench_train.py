"""bench/train.py on a tiny model: the full-head reference computes the same rewards as the
response-only head, and the benchmark runs end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from bench_helpers import BENCH, load_bench

from uniarm.training.batching import collate
from uniarm.training.rewards import response_logprobs


def test_full_head_rewards_match_the_response_only_head(tokenizer, tiny_llama):
    bench = load_bench("train")
    pairs = bench.synthetic_pairs(3, 5, 7, len(tokenizer), tokenizer.eos_token_id)
    batch, _ = collate(pairs, tokenizer.pad_token_id)

    class Holder:  # what full_head_rewards reads: the ARM's model
        model = tiny_llama

    full = bench.full_head_rewards(Holder, batch)
    assert torch.allclose(full, response_logprobs(tiny_llama, batch), atol=1e-4)

    # by hand for row 0: the 7 response tokens, predicted at positions 4 .. 10
    logprobs = torch.log_softmax(tiny_llama(input_ids=batch.input_ids[:1]).logits[0], dim=-1)
    ids = batch.input_ids[0]
    by_hand = sum(logprobs[t - 1, ids[t]] for t in range(5, 12))
    assert full[0].item() == pytest.approx(by_hand.item(), abs=1e-4)


def test_synthetic_pairs_have_the_asked_lengths(tokenizer):
    bench = load_bench("train")
    pairs = bench.synthetic_pairs(2, 4, 6, len(tokenizer), tokenizer.eos_token_id)
    for pair in pairs:
        assert len(pair.prompt) == 4
        assert [len(r) for r in pair.responses] == [6, 6]
        assert all(r[-1] == tokenizer.eos_token_id for r in pair.responses)
    assert [p.winners for p in pairs] == [(0, 1), (1, 0)]


@pytest.mark.slow
def test_train_benchmark_runs_end_to_end(tmp_path, tiny_model_dir):
    out = tmp_path / "results"
    command = [sys.executable, str(BENCH / "train.py"), "--quick", "--model", str(tiny_model_dir),
               "--tokens", "12", "--methods", "moslora", "lora", "lora-full-head",
               "--output-dir", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    report = json.loads((out / "train-quick.json").read_text())
    assert {"command", "date", "machine", "settings", "metrics"} <= set(report)
    by = {m["method"]: m for m in report["metrics"]}
    assert set(by) == {"moslora", "lora", "lora-full-head"}
    assert by["lora"]["step_time_vs_lora"] == 1.0
    ratio = by["lora-full-head"]["step_seconds"] / by["lora"]["step_seconds"]
    assert by["lora-full-head"]["full_head_slowdown"] == pytest.approx(ratio, abs=1e-3)
    assert by["moslora"]["pairs_per_s"] == pytest.approx(1 / by["moslora"]["step_seconds"], 1e-3)
    assert "| moslora |" in (out / "train-quick.md").read_text()

    again = subprocess.run(command, capture_output=True, text=True)  # no --overwrite: refused
    assert again.returncode != 0 and "--overwrite" in again.stderr
    assert json.loads((out / "train-quick.json").read_text()) == report
