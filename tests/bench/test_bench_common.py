"""bench/common.py: results paths, the report header, workers and memory readings."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap

import pytest
from bench_helpers import BENCH, load_bench

MB = 1 << 20


def test_result_paths_refuse_an_existing_result_without_overwrite(tmp_path):
    common = load_bench("common")
    args = argparse.Namespace(output_dir=tmp_path, overwrite=False)
    assert common.result_paths(args, "x") == (tmp_path / "x.json", tmp_path / "x.md")
    (tmp_path / "x.md").write_text("earlier")
    with pytest.raises(SystemExit, match="--overwrite"):
        common.result_paths(args, "x")
    args.overwrite = True
    assert common.result_paths(args, "x")[1] == tmp_path / "x.md"


def test_markdown_header_names_command_machine_and_load():
    common = load_bench("common")
    report = {
        "command": "python bench/x.py --quick",
        "date": "2026-01-02T03:04:05+00:00",
        "settings": {"threads": 1},
        "machine": {"cpu": "CPU", "cores": 2, "load_average": [1.0, 2.0, 3.0],
                    "load_average_end": [0.5, 1.0, 1.5], "torch": "T", "transformers": "X"},
    }  # fmt: skip
    line = (
        "`python bench/x.py --quick` on 2026-01-02T03:04:05+00:00: CPU, 2 cores (load average "
        "[1.0, 2.0, 3.0] at the start{}), 1 torch thread(s), torch T, transformers X."
    )
    assert common.markdown_header(report, "Title") == [
        "# Title", "", line.format(", [0.5, 1.0, 1.5] at the end"), ""
    ]  # fmt: skip
    assert common.markdown_header(report, "Title", load_at_end=False)[2] == line.format("")


def test_call_worker_passes_lines_on_and_returns_the_result(tmp_path, capsys):
    common = load_bench("common")
    script = tmp_path / "worker.py"
    script.write_text(
        textwrap.dedent("""
        import json, os, sys
        print("progress line")
        if "--fail" in sys.argv:
            sys.exit(3)
        print("RESULT " + json.dumps({"argv": sys.argv[1:], "omp": os.environ["OMP_NUM_THREADS"]}))
        """)
    )
    args = argparse.Namespace(threads=2, model="tiny")
    out = common.call_worker(script, "w", args, ["--extra", "1"])
    assert out == {
        "argv": ["--worker", "w", "--threads", "2", "--model", "tiny", "--extra", "1"],
        "omp": "2",
    }
    assert capsys.readouterr().out == "progress line\n"
    with pytest.raises(SystemExit, match="the w worker failed \\(exit 3\\)"):
        common.call_worker(script, "w", args, ["--fail"])


def test_process_peak_survives_a_window_reset():
    common = load_bench("common")
    memory = common.ProcessMemory()
    before = memory.rss_mb()
    block = b"\x01" * (300 * MB)  # written, so resident
    del block
    if not memory.reset_window():
        pytest.skip("this kernel does not let a process reset its VmHWM")
    window, process = memory.window_peak_mb(), memory.process_peak_mb()
    assert process >= before + 290
    assert window < process - 250  # the 300 MB came before the window


def test_a_workers_peak_is_its_own_not_its_drivers():
    """ru_maxrss of a fresh process starts at its parent's peak; VmHWM does not."""
    block = b"\x01" * (400 * MB)  # this process (the driver) is now large
    code = (
        f"import json, resource, sys; sys.path.insert(0, {str(BENCH)!r}); import common; "
        "print(json.dumps([common.ProcessMemory().process_peak_mb(), "
        "resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    del block
    own_peak, inherited = json.loads(out.stdout)
    assert inherited >= 400  # the driver's peak, leaked into the child's rusage
    assert own_peak < 200  # a bare interpreter
