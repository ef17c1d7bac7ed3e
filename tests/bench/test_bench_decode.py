"""bench/decode.py on a tiny model: the benchmark end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bench_helpers import BENCH, load_bench


@pytest.mark.slow
def test_decode_benchmark_runs_end_to_end(tmp_path, tiny_model_dir):
    out = tmp_path / "results"
    command = [sys.executable, str(BENCH / "decode.py"), "--quick", "--model", str(tiny_model_dir),
               "--batch-sizes", "1", "3", "--new-tokens", "3", "--methods", "base",
               "uniarm-merged", "uniarm-per-row", "--rounds", "2",
               "--output-dir", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    report = json.loads((out / "decode-quick.json").read_text())
    assert {"command", "date", "machine", "settings", "metrics"} <= set(report)
    assert "load_average_end" in report["machine"]
    metrics = report["metrics"]
    assert [(m["method"], m["batch_size"]) for m in metrics] == [
        (method, batch)
        for method in ("base", "uniarm-merged", "uniarm-per-row")
        for batch in (1, 3)
    ]
    by = {(m["method"], m["batch_size"]): m for m in metrics}
    for (_, batch), m in by.items():
        assert m["new_tokens"] == 3 * batch  # no EOS: every row runs full length
        ratio = m["tokens_per_s"] / by[("base", batch)]["tokens_per_s"]
        assert m["ratio_to_base"] == pytest.approx(ratio, abs=1e-3)
    for method in ("base", "uniarm-merged", "uniarm-per-row"):
        rows = [m for m in metrics if m["method"] == method]
        # the whole process's peak covers loading and every batch's window
        peak = rows[0]["peak_rss_mb"]
        assert peak >= max(m["decode_peak_rss_mb"] for m in rows)
        assert peak >= rows[0]["rss_after_load_mb"]
    assert "| uniarm-merged | 3 |" in (out / "decode-quick.md").read_text()

    # two rounds of the methods in turn: each setting keeps its fastest round
    assert all(m["rounds"] == 2 for m in metrics)
    ratios = {(r["ratio"], r["batch_size"]): r for r in report["ratios"]}
    names = ("merged / base", "per-row / merged")
    assert set(ratios) == {(name, b) for name in names for b in (1, 3)}
    for batch in (1, 3):
        merged = by[("uniarm-merged", batch)]["tokens_per_s"]
        expected = merged / by[("base", batch)]["tokens_per_s"]
        assert ratios[("merged / base", batch)]["value"] == pytest.approx(expected, abs=1e-3)
        assert ratios[("merged / base", batch)]["met"] == (expected >= 0.47)


def test_best_of_rounds_keeps_the_fastest_run_and_the_highest_memory():
    decode = load_bench("decode")

    def run(speed, peak):
        return {"method": "base", "batch_size": 1, "tokens_per_s": speed,
                "rss_after_load_mb": 100, "decode_peak_rss_mb": peak,
                "peak_rss_mb": peak}  # fmt: skip

    best = decode.best_of_rounds([[run(5.0, 300)], [run(7.0, 200)], [run(6.0, 400)]])
    assert len(best) == 1 and best[0]["tokens_per_s"] == 7.0
    assert best[0]["peak_rss_mb"] == 400 and best[0]["rounds"] == 3
