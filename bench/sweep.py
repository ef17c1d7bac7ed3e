"""A preference sweep: one batched per-row run with shared prefill against one merged run per
preference (METHOD.md §2, §6).

    .venv/bin/python bench/sweep.py --quick      # 2 prompts, 8 new tokens (~2 min)
    .venv/bin/python bench/sweep.py              # 1, 4 and 16 prompts, 32 new tokens
    .venv/bin/python bench/sweep.py --profile    # where a guided decoding step's time goes

Every prompt is decoded under the 11 preferences of the two-objective grid (0, 0.1, ..., 1):

- `sweep`: `GuidedDecoder.sweep`, all (prompt, preference) rows in batches of `--batch-size`,
  the unmerged UniARM conditioned per row; the base model prefills each prompt once per batch
  that holds its rows (a prompt's 11 rows may straddle two batches), the ARM prefills every row
  (its keys and values depend on the preference).
- `sweep-unshared`: the same with `share_prefill=False`: what sharing the base prefill buys.
- `merged`: 11 `generate` calls, one per preference, the ARM merged for it: a plain forward.

Base and ARM are the embedded default model, the ARM's adapters fresh with random nonzero B
(as in bench/decode.py). No EOS: every row decodes the full length. The methods run in turn in
one worker process per prompt count, so that the ratios compare runs made under the same load;
the fastest of the repeats is kept. Each run's time is split by timers around the engine's
calls: base forward, ARM forward (each as prefill and decoding steps), the guided
log-probabilities, the token choice, and the rest of the loop.

`--profile` times one decoding step (prefill excluded) of the base model alone, UniARM merged
and per row, PARM per row and GenARM with 2 and 3 objectives at batch 1, 8 and 32, and adds a
torch.profiler operator table of one batch; it writes sweep-profile.{json,md}.

Writes bench/results/sweep.json and sweep.md (sweep-quick.* with --quick); an existing result
is kept unless --overwrite.

This file is the driver and the command line; the measurements live beside it: sweep_grid.py
(the sweep worker), sweep_profile.py (the `--profile` worker), step_timer.py (the timers).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (results files, machine, workers)
from decode import distinct_prompts as sweep_prompts  # noqa: E402  (numbered prompts)
from step_timer import StepTimer  # noqa: E402  (merge_cost.py and the tests use it from here)
from sweep_grid import (  # noqa: E402  (the sweep worker)
    GRID_SIZE,
    METHODS,
    add_sweep_ratios,
    build_decoder,
    run_sweep_method,
    run_sweep_worker,
    sweep_markdown,
)
from sweep_profile import (  # noqa: E402  (the profile worker)
    PROFILE_METHODS,
    add_step_ratios,
    operator_table,
    profile_guides,
    profile_markdown,
    run_profile_worker,
    time_steps,
)

# The workers' names, importable from this script as one module (merge_cost.py, the tests).
__all__ = [
    "GRID_SIZE",
    "METHODS",
    "PROFILE_METHODS",
    "StepTimer",
    "add_step_ratios",
    "add_sweep_ratios",
    "build_decoder",
    "main",
    "operator_table",
    "parse_args",
    "profile_guides",
    "profile_markdown",
    "run_profile_worker",
    "run_sweep_method",
    "run_sweep_worker",
    "run_worker_process",
    "sweep_markdown",
    "sweep_prompts",
    "time_steps",
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 prompts, 8 new tokens")
    parser.add_argument("--profile", action="store_true", help="profile one decoding step")
    parser.add_argument("--prompts", type=int, nargs="+", help="prompt counts (1 4 16; 2)")
    parser.add_argument("--new-tokens", type=int, help="tokens per response (32; 8)")
    parser.add_argument("--batch-size", type=int, default=32, help="most rows per batch")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="--profile: (1 8 32; 1 4)")
    parser.add_argument("--methods", nargs="+", help="default: all of the mode's methods")
    parser.add_argument("--repeats", type=int, help="runs per setting, the fastest kept (2; 1)")
    common.add_arguments(parser)
    parser.add_argument("--worker", choices=("sweep", "profile"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.prompts = args.prompts or ([2] if args.quick else [1, 4, 16])
    args.new_tokens = args.new_tokens or (8 if args.quick else (16 if args.profile else 32))
    args.batch_sizes = args.batch_sizes or ([1, 4] if args.quick else [1, 8, 32])
    args.repeats = args.repeats or (1 if args.quick else 2)
    known = PROFILE_METHODS if args.profile or args.worker == "profile" else METHODS
    args.methods = args.methods or list(known)
    unknown = [m for m in args.methods if m not in known]
    if unknown:
        parser.error(f"unknown method(s) {unknown}; choose among {', '.join(known)}")
    return args


# -- the driver ------------------------------------------------------------------------------


def run_worker_process(kind: str, args, extra: list[str]) -> dict:
    extra = ["--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats),
             "--batch-size", str(args.batch_size), "--methods", *args.methods, *extra]  # fmt: skip
    if args.profile:
        extra.append("--profile")
    return common.call_worker(__file__, kind, args, extra)


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker == "sweep":
        return common.answer(run_sweep_worker(args))
    if args.worker == "profile":
        return common.answer(run_profile_worker(args))

    stem = "sweep-profile" if args.profile else "sweep"
    paths = common.result_paths(args, stem + ("-quick" if args.quick else ""))
    settings = {
        "model": args.model,
        "new_tokens": args.new_tokens,
        "threads": args.threads,
        "repeats": args.repeats,
        "methods": args.methods,
        "quick": args.quick,
    }
    report = common.start_report("sweep.py", argv, settings)
    if args.profile:
        settings["batch_sizes"] = args.batch_sizes
        out = run_worker_process("profile", args, ["--batch-sizes", *map(str, args.batch_sizes)])
        report |= out
        report["ratios"] = add_step_ratios(out["steps"])
    else:
        settings |= {"prompts": args.prompts, "batch_size": args.batch_size,
                     "preferences": GRID_SIZE}  # fmt: skip
        metrics, peaks = [], []
        for count in args.prompts:  # one process per prompt count: its own memory peak
            out = run_worker_process("sweep", args, ["--prompts", str(count)])
            metrics += out["metrics"]
            peaks.append(out["peak_rss_mb"])
        report["metrics"] = metrics
        report["peak_rss_mb"] = max(peaks)
        report["ratios"] = add_sweep_ratios(metrics)
    common.write_report(report, paths, profile_markdown if args.profile else sweep_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
