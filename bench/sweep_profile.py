"""The profile worker of sweep.py (`--profile`): where one guided decoding step's time goes.

It times one decoding step (prefill excluded) of every profiled method at several batch sizes,
the methods taking turns, and adds a torch.profiler operator table of one batch. It is imported
by sweep.py, whose worker process runs it; its half of the report's markdown is here too.
"""

from __future__ import annotations

import functools
import time

import common  # the report header
import decode  # the decoding benchmark's models, prompts and preferences
from rounds import take_turns  # methods in turn
from step_timer import StepTimer

PROFILE_METHODS = (
    "base",
    "uniarm-merged",
    "uniarm-per-row",
    "parm-per-row",
    "genarm-2",
    "genarm-3",
)


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

    prompts = decode.distinct_prompts(batch)
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
                decode.distinct_prompts(batch),
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
        steps += fastest_steps(decoders, batch, args, timer)

    operators = {}
    table_batch = 8 if 8 in args.batch_sizes else args.batch_sizes[-1]
    for method in [m for m in ("uniarm-merged", "uniarm-per-row") if m in decoders]:
        decoder, objectives = decoders[method]
        operators[method] = operator_table(
            decoder, method, objectives, table_batch, args.new_tokens
        )
    return {"steps": steps, "operators": operators, "operator_batch": table_batch}


def fastest_steps(decoders: dict, batch: int, args, timer) -> list[dict]:
    """Every method's decoding step at `batch` rows, in turn `args.repeats` times; each
    method's fastest (the least disturbed)."""

    def timed_run(method: str) -> dict:
        decoder, objectives = decoders[method]
        return time_steps(decoder, method, objectives, batch, args.new_tokens, timer)

    runs = take_turns(args.methods, args.repeats, timed_run)
    steps = []
    for method in args.methods:
        best = min(runs[method], key=lambda m: m["step_ms"])
        steps.append(best)
        print(f"  {method:15s} batch {batch:3d}: {best['step_ms']:8.1f} ms/step", flush=True)
    return steps


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
