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
"""

from __future__ import annotations

import argparse
import collections
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (results files, machine, workers, memory)
import decode  # noqa: E402  (the decoding benchmark's models, prompts and preferences)

METHODS = ("sweep", "sweep-unshared", "merged")
PROFILE_METHODS = (
    "base",
    "uniarm-merged",
    "uniarm-per-row",
    "parm-per-row",
    "genarm-2",
    "genarm-3",
)
GRID_SIZE = 11  # preferences of the two-objective grid at step 0.1


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


# -- timers around the engine's calls --------------------------------------------------------


class StepTimer:
    """Seconds spent in each part of `GuidedDecoder.generate`, by wrapping what it calls.

    The wrappers sit on the decoder instance, its guides and the engine module's two functions,
    so the engine runs unchanged; a forward of more than one token is a prefill.
    """

    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.prefill_rows: dict[str, int] = collections.defaultdict(int)

    def wrap(self, fn, name: str, split_prefill: bool = False):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            part = name
            if split_prefill:
                prefill = args[0].shape[1] > 1
                part += "_prefill" if prefill else "_decode"
                self.prefill_rows[name] += args[0].shape[0] if prefill else 0
            self.seconds[part] += time.perf_counter() - start
            return out

        return timed

    def install(self, decoder) -> None:
        import uniarm.decoding.engine as engine

        decoder._base_step = self.wrap(decoder._base_step, "base", split_prefill=True)
        for guide in decoder.guides:
            guide.forward = self.wrap(guide.forward, "arm", split_prefill=True)
        for name in ("guided_log_probs", "choose_tokens"):
            original = getattr(engine, name)
            original = getattr(original, "__wrapped__", original)
            setattr(engine, name, self.wrap(original, name))

    def take(self, total: float) -> dict[str, float]:
        """The parts since the last call, with the rest of `total` as `other`."""
        parts = {k: round(v, 3) for k, v in sorted(self.seconds.items())}
        parts["other"] = round(total - sum(self.seconds.values()), 3)
        self.seconds.clear()
        return parts

    def take_rows(self) -> dict[str, int]:
        """How many rows each model prefilled since the last call."""
        rows = dict(sorted(self.prefill_rows.items()))
        self.prefill_rows.clear()
        return rows


# -- the sweep worker ------------------------------------------------------------------------


def sweep_prompts(count: int) -> list[str]:
    return [f"{decode.QUESTIONS[i % len(decode.QUESTIONS)]} (#{i + 1})" for i in range(count)]


def run_sweep_method(decoder, method: str, prompts, grid, args, memory) -> tuple[dict, list]:
    """Decode every prompt under every preference once; time, its parts, memory, tokens."""
    from uniarm.decoding import DecodingConfig

    can_reset = memory.reset_window()
    start = time.perf_counter()
    if method == "merged":
        config = DecodingConfig(
            max_new_tokens=args.new_tokens, batch_size=min(len(prompts), args.batch_size)
        )
        by_preference = [decoder.generate(prompts, [p], config=config) for p in grid]
        outputs = [[by_preference[j][i] for j in range(len(grid))] for i in range(len(prompts))]
        batch = config.batch_size
    else:
        config = DecodingConfig(
            max_new_tokens=args.new_tokens,
            batch_size=args.batch_size,
            share_prefill=method == "sweep",
        )
        outputs = decoder.sweep(prompts, grid, config=config)
        batch = min(args.batch_size, len(prompts) * len(grid))
    seconds = time.perf_counter() - start
    tokens = sum(len(g.token_ids) for row in outputs for g in row)
    metric = {
        "method": method,
        "prompts": len(prompts),
        "rows": len(prompts) * len(grid),
        "batch_size": batch,
        "new_tokens": tokens,
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 3),
        "decode_peak_rss_mb": round(memory.window_peak_mb()) if can_reset else None,
    }
    return metric, [[g.token_ids for g in row] for row in outputs]


def build_decoder(spec: str):
    """Base model and an unmerged UniARM guide that merges when a batch has one preference."""
    from uniarm.decoding import GuidedDecoder
    from uniarm.models import load_model

    base, tokenizer = load_model(spec)
    guides, objectives = decode.build_guides("uniarm-merged", spec)  # merge="auto"
    # EOS can never match: every row decodes exactly new_tokens tokens
    return GuidedDecoder(base, tokenizer, guides, eos_token_ids=[-1]), objectives


def run_sweep_worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from uniarm.decoding import DecodingConfig
    from uniarm.preference import task_grid

    memory = common.ProcessMemory()
    decoder, _ = build_decoder(args.model)
    grid = task_grid(2)
    timer = StepTimer()
    timer.install(decoder)
    warm = DecodingConfig(max_new_tokens=2)
    decoder.generate(decode.QUESTIONS[:1], [grid[0]], config=warm)  # warm-up, merged
    decoder.generate(decode.QUESTIONS[:2], grid[:2], config=warm)  # warm-up, per row
    timer.take(0.0)
    timer.take_rows()
    loaded_rss = memory.rss_mb()

    metrics = []
    for count in args.prompts:
        prompts = sweep_prompts(count)
        runs: dict[str, list[dict]] = {m: [] for m in args.methods}
        tokens: dict[str, list] = {}
        for repeat in range(args.repeats):
            shift = repeat % len(args.methods)  # alternate the order: no method always first
            for method in args.methods[shift:] + args.methods[:shift]:
                metric, tokens[method] = run_sweep_method(
                    decoder, method, prompts, grid, args, memory
                )
                metric["parts_s"] = timer.take(metric["seconds"])
                metric["prefill_rows"] = timer.take_rows()
                runs[method].append(metric)
        for method in args.methods:
            best = min(runs[method], key=lambda m: m["seconds"])  # the least disturbed
            best["rss_after_load_mb"] = round(loaded_rss)
            best["repeats_s"] = [m["seconds"] for m in runs[method]]
            if "merged" in tokens and method != "merged":
                same = sum(
                    a == b
                    for row, ref in zip(tokens[method], tokens["merged"])
                    for a, b in zip(row, ref)
                )
                best["rows_equal_to_merged"] = same
            metrics.append(best)
            print(
                f"  {count:3d} prompts  {method:15s} {best['seconds']:8.2f} s  "
                f"{best['tokens_per_s']:7.2f} tok/s",
                flush=True,
            )
    return {"metrics": metrics, "peak_rss_mb": round(memory.process_peak_mb())}


def add_sweep_ratios(metrics: list[dict]) -> list[dict]:
    """Per prompt count: how many times faster than the 11 merged runs each method is."""
    ratios = []
    for count in sorted({m["prompts"] for m in metrics}):
        here = {m["method"]: m for m in metrics if m["prompts"] == count}
        merged = here.get("merged")
        row = {"prompts": count}
        for method, m in here.items():
            if merged is not None and method != "merged":
                row[f"{method}_speedup"] = round(merged["seconds"] / m["seconds"], 3)
        sweep = here.get("sweep")
        if sweep is not None:
            parts = sweep["parts_s"]
            row["sweep_arm_prefill_fraction"] = round(
                parts.get("arm_prefill", 0.0) / sweep["seconds"], 3
            )
        ratios.append(row)
    return ratios


# -- the step profile worker -----------------------------------------------------------------


def profile_guides(spec: str):
    """Guides for every profiled method, over one copy of each ARM (merged and per-row UniARM
    share theirs; GenARM-2 uses the first two members of GenARM-3's model)."""
    from uniarm.decoding import ObjectiveGuide, PreferenceGuide

    uniarm, objectives = decode.build_guides("uniarm-per-row", spec)
    parm, _ = decode.build_guides("parm-per-row", spec)
    genarm, all_objectives = decode.build_guides("genarm-3", spec)
    arm = uniarm[0].arm
    two = all_objectives[:2]
    genarm_2 = [  # the same members, switched on as GenARM-3's guides do
        ObjectiveGuide(g.model, two, g.objective, g.tokenizer, activate=g._activate)
        for g in genarm[:2]
    ]
    return {
        "base": ([], ()),
        "uniarm-merged": ([PreferenceGuide(arm, uniarm[0].tokenizer, merge="auto")], objectives),
        "uniarm-per-row": (uniarm, objectives),
        "parm-per-row": (parm, objectives),
        "genarm-2": (genarm_2, two),
        "genarm-3": (genarm, all_objectives),
    }


def time_steps(decoder, method, objectives, batch: int, new_tokens: int, timer) -> dict:
    """One decode of `batch` rows; the mean decoding step (prefill excluded) and its parts."""
    from uniarm.decoding import DecodingConfig

    stamps: list[float] = []
    parts_at_first: dict[str, float] = {}

    def note(step):
        stamps.append(time.perf_counter())
        if step.step == 0:
            parts_at_first.update(timer.seconds)

    prompts = sweep_prompts(batch)
    config = DecodingConfig(max_new_tokens=new_tokens, batch_size=batch)
    decoder.generate(
        prompts, decode.preference_rows(method, objectives, batch), config=config, on_step=note
    )
    steps = len(stamps) - 1
    step_s = (stamps[-1] - stamps[0]) / steps
    decode_parts = {k: v - parts_at_first.get(k, 0.0) for k, v in timer.seconds.items()}
    timer.seconds.clear()
    parts = {k: round(v / steps * 1000, 2) for k, v in sorted(decode_parts.items()) if v > 0}
    parts["other"] = round(step_s * 1000 - sum(parts.values()), 2)
    return {"method": method, "batch_size": batch, "step_ms": round(step_s * 1000, 2),
            "parts_ms": parts}  # fmt: skip


def operator_table(decoder, method, objectives, batch: int, new_tokens: int) -> list[dict]:
    """torch.profiler's self time per operator over one decode, with coarse labels."""
    from torch.profiler import ProfilerActivity, profile, record_function
    from transformers.cache_utils import DynamicLayer

    from uniarm.decoding import DecodingConfig

    def labelled(fn, label):
        @functools.wraps(fn)
        def run(*args, **kwargs):
            with record_function(label):
                return fn(*args, **kwargs)

        return run

    heads = [m.get_output_embeddings() for m in (decoder.base, *(g.model for g in decoder.guides))]
    saved = [(h, h.forward) for h in heads] + [(DynamicLayer, DynamicLayer.update)]
    for head in heads:
        head.forward = labelled(head.forward, "## lm_head")
    DynamicLayer.update = labelled(DynamicLayer.update, "## kv cache update")
    try:
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            decoder.generate(
                sweep_prompts(batch),
                decode.preference_rows(method, objectives, batch),
                config=DecodingConfig(max_new_tokens=new_tokens, batch_size=batch),
            )
    finally:
        for owner, fn in saved:
            if owner is DynamicLayer:
                DynamicLayer.update = fn
            else:
                owner.forward = fn
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    rows = []
    operators = [e for e in events if not e.key.startswith("## ")]
    for e in sorted(operators, key=lambda e: -e.self_cpu_time_total)[:12]:
        rows.append({"name": e.key, "calls": e.count,
                     "self_ms": round(e.self_cpu_time_total / 1000, 1),
                     "self_fraction": round(e.self_cpu_time_total / total, 3)})  # fmt: skip
    for e in events:
        if e.key.startswith("## "):
            rows.append({"name": e.key[3:], "calls": e.count,
                         "total_ms": round(e.cpu_time_total / 1000, 1),
                         "total_fraction": round(e.cpu_time_total / total, 3)})  # fmt: skip
    return rows


def run_profile_worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from uniarm.decoding import DecodingConfig, GuidedDecoder
    from uniarm.models import load_model

    base, tokenizer = load_model(args.model)
    guides = profile_guides(args.model)
    timer = StepTimer()
    decoders = {}
    for method in args.methods:
        method_guides, objectives = guides[method]
        decoder = GuidedDecoder(base, tokenizer, method_guides, eos_token_ids=[-1])
        timer.install(decoder)
        prefs = decode.preference_rows(method, objectives, 2)
        decoder.generate(decode.QUESTIONS[:2], prefs, config=DecodingConfig(max_new_tokens=2))
        decoders[method] = (decoder, objectives)
    timer.seconds.clear()

    steps = []
    for batch in args.batch_sizes:
        runs: dict[str, list[dict]] = {m: [] for m in args.methods}
        for repeat in range(args.repeats):
            shift = repeat % len(args.methods)
            for method in args.methods[shift:] + args.methods[:shift]:
                decoder, objectives = decoders[method]
                runs[method].append(
                    time_steps(decoder, method, objectives, batch, args.new_tokens, timer)
                )
        for method in args.methods:
            best = min(runs[method], key=lambda m: m["step_ms"])
            steps.append(best)
            print(f"  {method:15s} batch {batch:3d}: {best['step_ms']:8.1f} ms/step", flush=True)

    operators = {}
    table_batch = 8 if 8 in args.batch_sizes else args.batch_sizes[-1]
    for method in [m for m in ("uniarm-merged", "uniarm-per-row") if m in decoders]:
        decoder, objectives = decoders[method]
        operators[method] = operator_table(
            decoder, method, objectives, table_batch, args.new_tokens
        )
    return {"steps": steps, "operators": operators, "operator_batch": table_batch}


def add_step_ratios(steps: list[dict]) -> list[dict]:
    """Decoding-step speed ratios at each batch size (a step's time inverted)."""
    out = []
    for batch in sorted({s["batch_size"] for s in steps}):
        ms = {s["method"]: s["step_ms"] for s in steps if s["batch_size"] == batch}
        row = {"batch_size": batch}
        pairs = {
            "uniarm_merged_vs_base": ("uniarm-merged", "base"),
            "uniarm_vs_genarm_2": ("uniarm-merged", "genarm-2"),
            "uniarm_vs_genarm_3": ("uniarm-merged", "genarm-3"),
            "per_row_vs_merged": ("uniarm-per-row", "uniarm-merged"),
            "parm_per_row_vs_merged": ("parm-per-row", "uniarm-merged"),
        }
        for name, (fast, slow) in pairs.items():
            if fast in ms and slow in ms:
                row[name] = round(ms[slow] / ms[fast], 3)
        out.append(row)
    return out


# -- the driver ------------------------------------------------------------------------------


def run_worker_process(kind: str, args, extra: list[str]) -> dict:
    extra = ["--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats),
             "--batch-size", str(args.batch_size), "--methods", *args.methods, *extra]  # fmt: skip
    if args.profile:
        extra.append("--profile")
    return common.call_worker(__file__, kind, args, extra)


def sweep_markdown(report: dict) -> str:
    s = report["settings"]
    lines = common.markdown_header(
        report, "Preference sweep: one batched run against 11 merged runs"
    )
    lines += [
        f"Model {s['model']} as base and as the UniARM (MoSLoRA r1=r2=4, fresh adapters with B "
        f"random nonzero); each prompt under the {GRID_SIZE} preferences (0, 0.1, ..., 1) of two "
        f"objectives; {s['new_tokens']} new tokens per row, no EOS; greedy; batches of at most "
        f"{s['batch_size']} rows (the merged runs: as many as there are prompts); the fastest of "
        f"{s['repeats']} run(s), the methods taking turns in one process. `sweep`: "
        "GuidedDecoder.sweep, the ARM unmerged and conditioned per row, the base prefill "
        "shared across a prompt's rows; `sweep-unshared`: the same without prefill sharing; "
        "`merged`: one generate per preference with the ARM merged. Speed-up: the merged runs' "
        "time over the method's. Target: sweep at least 1.5 times faster than the merged runs.",
        "",
        "| prompts | method | rows | batch | seconds | tokens/s | speed-up vs merged | "
        "prefill rows base / ARM | base prefill s | ARM prefill s | base decode s | "
        "ARM decode s | log-probs s | choice s | other s | decoding peak MB | "
        "rows equal to merged |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    speedups = {(r["prompts"], k[: -len("_speedup")]): v for r in report["ratios"]
                for k, v in r.items() if k.endswith("_speedup")}  # fmt: skip
    for m in report["metrics"]:
        p = m["parts_s"]
        speedup = speedups.get((m["prompts"], m["method"]))
        equal = m.get("rows_equal_to_merged")
        equal = "" if equal is None else f"{equal}/{m['rows']}"
        lines.append(
            f"| {m['prompts']} | {m['method']} | {m['rows']} | {m['batch_size']} | "
            f"{m['seconds']:.2f} | {m['tokens_per_s']:.1f} | "
            f"{'' if speedup is None else f'{speedup:.2f}'} | "
            f"{m['prefill_rows'].get('base', 0)} / {m['prefill_rows'].get('arm', 0)} | "
            f"{p.get('base_prefill', 0):.2f} | {p.get('arm_prefill', 0):.2f} | "
            f"{p.get('base_decode', 0):.2f} | {p.get('arm_decode', 0):.2f} | "
            f"{p.get('guided_log_probs', 0):.2f} | {p.get('choose_tokens', 0):.2f} | "
            f"{p['other']:.2f} | {m['decode_peak_rss_mb']} | "
            f"{equal} |"
        )
    lines += ["", f"Worker peak RSS over the whole run: {report['peak_rss_mb']} MB.", ""]
    return "\n".join(lines)


def profile_markdown(report: dict) -> str:
    s = report["settings"]
    lines = common.markdown_header(report, "Where a guided decoding step's time goes")
    lines += [
        f"Model {s['model']} as base and as every ARM (fresh adapters, B random nonzero); the "
        f"mean decoding step over {s['new_tokens']} new tokens (prefill excluded), the fastest "
        f"of {s['repeats']} run(s), the methods taking turns in one process. Parts: timers "
        "around the engine's calls (base forward, ARM forwards, the guided log-probabilities "
        "with their log-softmaxes over the vocabulary, the token choice); other is the rest of "
        "the engine's loop (bookkeeping, the mask, stop checks).",
        "",
        "| method | batch | ms/step | base fwd ms | ARM fwd ms | log-probs ms | choice ms | "
        "other ms |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in report["steps"]:
        p = m["parts_ms"]
        lines.append(
            f"| {m['method']} | {m['batch_size']} | {m['step_ms']:.1f} | "
            f"{p.get('base_decode', 0):.1f} | {p.get('arm_decode', 0):.1f} | "
            f"{p.get('guided_log_probs', 0):.2f} | {p.get('choose_tokens', 0):.2f} | "
            f"{p['other']:.2f} |"
        )
    lines += ["", "Step speed ratios (a step's time, inverted), with the targets:", ""]
    names = ["uniarm_merged_vs_base", "uniarm_vs_genarm_2", "uniarm_vs_genarm_3",
             "per_row_vs_merged", "parm_per_row_vs_merged"]  # fmt: skip
    targets = {"uniarm_merged_vs_base": "≥ 0.47", "uniarm_vs_genarm_2": "≥ 1.45",
               "uniarm_vs_genarm_3": "≥ 1.9", "per_row_vs_merged": "≥ 0.9",
               "parm_per_row_vs_merged": ""}  # fmt: skip
    lines += ["| batch | " + " | ".join(names) + " |", "|---:|" + "---:|" * len(names)]
    for r in report["ratios"]:
        lines.append(
            f"| {r['batch_size']} | "
            + " | ".join(f"{r.get(n, float('nan')):.3f}" for n in names)
            + " |"
        )
    lines.append("| target | " + " | ".join(targets[n] for n in names) + " |")
    for method, rows in report["operators"].items():
        lines += [
            "",
            f"torch.profiler over one decode of {method} at batch {report['operator_batch']} "
            "(prefill included; the profiler slows small operators, so read fractions, not "
            "times):",
            "",
            "| operator or part | calls | self ms | share of self time | part total ms | share |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in rows:
            lines.append(
                f"| {r['name']} | {r['calls']} | {r.get('self_ms', '')} | "
                f"{r.get('self_fraction', '')} | {r.get('total_ms', '')} | "
                f"{r.get('total_fraction', '')} |"
            )
    return "\n".join(lines) + "\n"


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
