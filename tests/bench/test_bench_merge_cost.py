"""bench/merge_cost.py on a tiny model: the benchmark end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from bench_helpers import BENCH


@pytest.mark.slow
def test_merge_cost_runs_end_to_end(tmp_path, tiny_model_dir):
    out = tmp_path / "results"
    command = [sys.executable, str(BENCH / "merge_cost.py"), "--model", str(tiny_model_dir),
               "--repeats", "2", "--output-dir", str(out)]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True, text=True)
    report = json.loads((out / "merge-cost.json").read_text())
    assert {"command", "date", "machine", "settings", "rows"} <= set(report)
    names = [r["operation"] for r in report["rows"]]
    assert names[:4] == ["moslora merge", "moslora unmerge", "pblora merge", "pblora unmerge"]
    assert names[4].startswith("base prefill, ") and names[5] == "base decoding step, batch 1"
    assert sum("merge kept" in n for n in names) == 2 and len(names) == 10
    assert report["rows"][0]["layers"] == 3 * 2  # q, k, v in the tiny model's 2 layers
    assert all(0 <= r["min_ms"] <= r["median_ms"] for r in report["rows"])  # 0.1 ms steps
    assert "| moslora merge | 6 |" in (out / "merge-cost.md").read_text()
