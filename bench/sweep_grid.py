"""The sweep worker of sweep.py: every prompt under the preference grid, batched or merged.

It decodes each prompt under the 11 preferences of the two-objective grid in three ways
(`sweep`, `sweep-unshared`, `merged`; see sweep.py), the methods taking turns, and reports each
run's time split into parts by the step timers. It is imported by sweep.py, whose worker process
runs it; its half of the report's markdown is here too.
"""

from __future__ import annotations

import time

import common  # results files, workers, memory
import decode  # the decoding benchmark's models, prompts and preferences
from rounds import take_turns  # methods in turn
from step_timer import StepTimer

METHODS = ("sweep", "sweep-unshared", "merged")
GRID_SIZE = 11  # preferences of the two-objective grid at step 0.1


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
        metrics += sweep_prompt_count(decoder, count, grid, args, memory, timer, loaded_rss)
    return {"metrics": metrics, "peak_rss_mb": round(memory.process_peak_mb())}


def sweep_prompt_count(decoder, count: int, grid, args, memory, timer, loaded_rss) -> list[dict]:
    """Every method on `count` prompts, in turn `args.repeats` times; each method's fastest run
    (the least disturbed) with its parts and how many of its rows equal the merged runs'."""
    prompts = decode.distinct_prompts(count)
    tokens: dict[str, list] = {}  # each method's tokens, from its last run

    def timed_run(method: str) -> dict:
        metric, tokens[method] = run_sweep_method(decoder, method, prompts, grid, args, memory)
        metric["parts_s"] = timer.take(metric["seconds"])
        metric["prefill_rows"] = timer.take_rows()
        return metric

    runs = take_turns(args.methods, args.repeats, timed_run)
    metrics = []
    for method in args.methods:
        best = min(runs[method], key=lambda m: m["seconds"])
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
    return metrics


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
