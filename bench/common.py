"""What the benchmarks share: their results files, the machine, workers and memory readings.

Each benchmark (decode.py, sweep.py, train.py) is a driver that runs its measurements in
worker processes of the same script (`--worker ...`), so that every worker's memory peak is its
own. A worker prints one `RESULT <json>` line; the driver gathers them into one report
(command, date, machine, settings, metrics), written as bench/results/<name>.json and .md.
An existing result is kept unless --overwrite.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
RESULT_PREFIX = "RESULT "


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every benchmark takes."""
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results")


def result_paths(args, stem: str) -> tuple[Path, Path]:
    """`<stem>.json` and `<stem>.md` in the output folder; refused if either exists already."""
    json_path, md_path = args.output_dir / f"{stem}.json", args.output_dir / f"{stem}.md"
    if not args.overwrite and (json_path.exists() or md_path.exists()):
        raise SystemExit(f"{json_path} exists: pass --overwrite to replace it")
    return json_path, md_path


# -- the report ------------------------------------------------------------------------------


def machine() -> dict:
    """The CPU, its load now and the library versions."""
    import torch
    import transformers

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average": _load(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def start_report(script: str, argv, settings: dict) -> dict:
    """The report's command, date and machine (load at the start), before any worker runs."""
    return {
        "command": " ".join(["python", f"bench/{script}", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": machine(),
        "settings": settings,
    }


def write_report(report: dict, paths: tuple[Path, Path], markdown: Callable[[dict], str]):
    """Note the load at the end, then write the report and `markdown(report)` atomically."""
    sys.path.insert(0, str(BENCH.parent / "src"))
    from uniarm.io import write_json, write_text

    json_path, md_path = paths
    report["machine"]["load_average_end"] = _load()
    write_json(json_path, report)
    write_text(md_path, markdown(report))
    print(f"wrote {json_path} and {md_path}")


def markdown_header(report: dict, title: str, load_at_end: bool = True) -> list[str]:
    """The title and the line saying what ran where: command, date, CPU, load, versions."""
    s, mach = report["settings"], report["machine"]
    load = f"load average {mach['load_average']} at the start"
    if load_at_end:
        load += f", {mach['load_average_end']} at the end"
    return [
        f"# {title}",
        "",
        f"`{report['command']}` on {report['date']}: {mach['cpu']}, {mach['cores']} cores "
        f"({load}), {s['threads']} torch thread(s), torch {mach['torch']}, "
        f"transformers {mach['transformers']}.",
        "",
    ]


# -- workers ---------------------------------------------------------------------------------


def call_worker(script: str | Path, worker: str, args, extra: list[str]) -> dict:
    """Run `script --worker worker` in a fresh process with the common options and `extra`;
    its printed lines are passed on, its RESULT line returned."""
    command = [sys.executable, str(script), "--worker", worker, "--threads", str(args.threads),
               "--model", args.model, *extra]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TQDM_DISABLE": "1"}
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.splitlines()
    for line in lines:
        if not line.startswith(RESULT_PREFIX):
            print(line, flush=True)
    results = [line for line in lines if line.startswith(RESULT_PREFIX)]
    if done.returncode != 0 or not results:
        raise SystemExit(f"the {worker} worker failed (exit {done.returncode})")
    return json.loads(results[-1][len(RESULT_PREFIX) :])


def answer(result: dict) -> int:
    """A worker's last word: its result, as the line `call_worker` reads."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


# -- memory ----------------------------------------------------------------------------------


class ProcessMemory:
    """This process's resident memory, from /proc/self/status.

    The peak is the kernel's high-water mark VmHWM, which `reset_window` sets back to the
    current resident set so that a window's peak can be read; the peak over the whole process
    is kept across those resets. `resource.getrusage(...).ru_maxrss` is no substitute: a
    worker inherits its driver's peak in it at exec, and the reset clears it too.
    """

    def __init__(self):
        self._before_reset = 0.0

    def rss_mb(self) -> float:
        return _status_mb("VmRSS:")

    def window_peak_mb(self) -> float:
        """The peak since the last `reset_window` (since the start without one)."""
        return _status_mb("VmHWM:")

    def reset_window(self) -> bool:
        """Start a new peak window; False where the kernel does not allow it."""
        peak = self.window_peak_mb()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            return False
        self._before_reset = max(self._before_reset, peak)
        return True

    def process_peak_mb(self) -> float:
        """The peak since the process started, loading included."""
        return max(self._before_reset, self.window_peak_mb())


def _status_mb(key: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1]) / 1024  # kB
    return float("nan")
