"""Decoding speed of guided decoding against the base model alone (METHOD.md §2).

    .venv/bin/python bench/decode.py --quick       # batch 1 and 4, 8 new tokens (~2 min)
    .venv/bin/python bench/decode.py               # batch 1, 8 and 32, 32 new tokens

Base and ARMs are the embedded default model (SmolLM2-135M-Instruct), the ARMs with freshly
initialised adapters whose B matrices are random and nonzero, so that the adapter path is really
computed. Every response runs to the full length (no EOS), so all methods decode the same number
of tokens. Each method runs in its own process, so that its peak memory is its own; tokens/s
are compared with the base model alone from the same run. The methods take turns: every round
runs each method's worker once, and a setting keeps its fastest round, so a burst of load from
other jobs on a shared machine lands on every method alike instead of on one. The merged
UniARM's guide keeps its merge between calls of one preference, so the warm-up call merges and
the timed calls do not.

Writes bench/results/decode.json (command, date, machine, settings, metrics) and decode.md
(decode-quick.* with --quick); an existing result is kept unless --overwrite.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (results files, machine, workers, memory)
from rounds import best_run  # noqa: E402  (the fastest round, the highest memory)

METHODS = ("base", "uniarm-merged", "uniarm-per-row", "parm-per-row", "genarm-2", "genarm-3")
OBJECTIVES = ("helpful", "harmless", "humor")
QUESTIONS = [
    "How do I bake a simple loaf of bread at home?",
    "What is a good way to learn a new language as an adult?",
    "Can you explain how vaccines train the immune system?",
    "Give me three tips for a job interview.",
    "Why is the sky blue?",
    "How can I get better sleep?",
    "What should I pack for a weekend hike?",
    "Tell me a short joke about computers.",
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 1 and 4, 8 new tokens")
    parser.add_argument("--batch-sizes", type=int, nargs="+", help="default: 1 8 32")
    parser.add_argument("--new-tokens", type=int, help="tokens per response (default 32)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--repeats", type=int, help="runs per setting and round (1)")
    parser.add_argument(
        "--rounds", type=int, help="rounds of all methods in turn, the fastest kept (2; 1)"
    )
    common.add_arguments(parser)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch_sizes = args.batch_sizes or ([1, 4] if args.quick else [1, 8, 32])
    args.new_tokens = args.new_tokens or (8 if args.quick else 32)
    args.repeats = args.repeats or 1
    args.rounds = args.rounds or (1 if args.quick else 2)
    return args


# -- one method, in its own process ---------------------------------------------------------


def randomise_zero_parameters(params, std=0.01, seed=0):
    """Give the zero-initialised B matrices random values: the adapter path then matters."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in params:
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=gen) * std)


def build_guides(method: str, spec: str):
    """The guides of a method over a fresh copy of the model (adapters random, B nonzero)."""
    from uniarm.adapters import AdapterConfig, PreferenceARM
    from uniarm.decoding import ObjectiveGuide, PreferenceGuide
    from uniarm.models import load_model

    if method == "base":
        return [], ()
    model, tokenizer = load_model(spec)
    if method.startswith(("uniarm", "parm")):
        objectives = OBJECTIVES[:2]
        adapter = AdapterConfig(adapter="moslora" if method.startswith("uniarm") else "pblora")
        arm = PreferenceARM(model, tokenizer, objectives, adapter)
        randomise_zero_parameters(arm.trainable_parameters())
        merge = "auto" if method.endswith("merged") else "never"
        return [PreferenceGuide(arm, tokenizer, merge=merge)], objectives

    from uniarm.adapters.lora import GenARM, LoRASettings

    objectives = OBJECTIVES[: int(method.rsplit("-", 1)[1])]
    genarm = GenARM.build(model, objectives, LoRASettings(), base_model=spec).eval()
    randomise_zero_parameters(genarm.trainable_parameters())
    guides = [
        ObjectiveGuide(
            genarm.model, objectives, o, tokenizer, activate=functools.partial(genarm.use, o)
        )
        for o in objectives
    ]
    return guides, objectives


def preference_rows(method: str, objectives, batch: int):
    """One shared preference for the merged path; otherwise a different one per row."""
    k = len(objectives)
    if not k:
        return None
    if method.endswith("merged"):
        return [[1 / k] * k] * batch
    rows = []
    for i in range(batch):
        w = (i % 5) / 4  # 0, 0.25, ..., 1 on the first objective; the rest shared evenly
        rows.append([w] + [(1 - w) / (k - 1)] * (k - 1))
    return rows


def distinct_prompts(count: int) -> list[str]:
    """`count` prompts, the questions in turn, each numbered: no two rows share a prefill."""
    return [f"{QUESTIONS[i % len(QUESTIONS)]} (#{i + 1})" for i in range(count)]


def measure(decoder, method: str, objectives, batch: int, new_tokens: int, memory) -> dict:
    """Decode `batch` distinct prompts once; speed, prefill time and peak memory."""
    from uniarm.decoding import DecodingConfig

    prompts = distinct_prompts(batch)
    config = DecodingConfig(max_new_tokens=new_tokens, batch_size=batch)
    first_step: list[float] = []

    def note_prefill(step):
        if step.step == 0:
            first_step.append(time.perf_counter())

    can_reset = memory.reset_window()
    start = time.perf_counter()
    out = decoder.generate(
        prompts, preference_rows(method, objectives, batch), config=config, on_step=note_prefill
    )
    seconds = time.perf_counter() - start
    tokens = sum(len(g.token_ids) for g in out)
    prefill = first_step[0] - start
    return {
        "method": method,
        "batch_size": batch,
        "new_tokens": tokens,
        "prompt_tokens": sum(g.prompt_tokens for g in out),
        "seconds": round(seconds, 3),
        "prefill_seconds": round(prefill, 3),
        "tokens_per_s": round(tokens / seconds, 3),
        "decode_tokens_per_s": round((tokens - batch) / (seconds - prefill), 3),
        "decode_peak_rss_mb": round(memory.window_peak_mb()) if can_reset else None,
    }


def run_worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from uniarm.decoding import DecodingConfig, GuidedDecoder
    from uniarm.models import load_model

    memory = common.ProcessMemory()
    base, tokenizer = load_model(args.model)
    guides, objectives = build_guides(args.worker, args.model)
    # EOS can never match: every row decodes exactly new_tokens tokens
    decoder = GuidedDecoder(base, tokenizer, guides, eos_token_ids=[-1])
    decoder.generate(QUESTIONS[:1], preference_rows(args.worker, objectives, 1),
                     config=DecodingConfig(max_new_tokens=2))  # fmt: skip  # warm-up
    loaded_rss = memory.rss_mb()  # after a forward: the lazily mapped weights are all resident now

    metrics = []
    for batch in args.batch_sizes:
        runs = [
            measure(decoder, args.worker, objectives, batch, args.new_tokens, memory)
            for _ in range(args.repeats)
        ]
        best = max(runs, key=lambda m: m["tokens_per_s"])  # the least disturbed by other jobs
        metrics.append(best)
        speed = best["tokens_per_s"]
        print(f"  {args.worker:15s} batch {batch:3d}: {speed:7.2f} tok/s", flush=True)
    for m in metrics:
        m["rss_after_load_mb"] = round(loaded_rss)
        m["peak_rss_mb"] = round(memory.process_peak_mb())
    return {"metrics": metrics}


# -- the driver -----------------------------------------------------------------------------


def run_method(method: str, args) -> list[dict]:
    extra = ["--new-tokens", str(args.new_tokens), "--repeats", str(args.repeats),
             "--batch-sizes", *map(str, args.batch_sizes)]  # fmt: skip
    return common.call_worker(__file__, method, args, extra)["metrics"]


MEMORY_FIELDS = ("rss_after_load_mb", "decode_peak_rss_mb", "peak_rss_mb")


def best_of_rounds(rounds: list[list[dict]]) -> list[dict]:
    """Per (method, batch), the fastest round's figures; memory peaks are the highest seen."""
    settings: dict[tuple, list[dict]] = {}
    for metrics in rounds:
        for m in metrics:
            settings.setdefault((m["method"], m["batch_size"]), []).append(m)
    speed = lambda m: m["tokens_per_s"]
    return [
        best_run(runs, speed, MEMORY_FIELDS) | {"rounds": len(rounds)} for runs in settings.values()
    ]


def add_ratios(metrics: list[dict]) -> None:
    base = {m["batch_size"]: m for m in metrics if m["method"] == "base"}
    for m in metrics:
        ref = base.get(m["batch_size"])
        ratio = None if ref is None else m["tokens_per_s"] / ref["tokens_per_s"]
        m["ratio_to_base"] = None if ratio is None else round(ratio, 3)


# (name, numerator, denominator, target, limit) of the targets, at each batch size
RATIOS = (
    ("merged / base", "uniarm-merged", "base", 0.47, 0.5),
    ("per-row / merged", "uniarm-per-row", "uniarm-merged", 0.9, 1.0),
    ("merged / GenARM k=2", "uniarm-merged", "genarm-2", 1.45, 1.5),
    ("merged / GenARM k=3", "uniarm-merged", "genarm-3", 1.9, 2.0),
    ("per-row / GenARM k=2", "uniarm-per-row", "genarm-2", 1.45, 1.5),
    ("per-row / GenARM k=3", "uniarm-per-row", "genarm-3", 1.9, 2.0),
)


def target_ratios(metrics: list[dict]) -> list[dict]:
    """The tokens/s ratios the targets are about, per batch size, from the same run."""
    speed = {(m["method"], m["batch_size"]): m["tokens_per_s"] for m in metrics}
    rows = []
    for batch in sorted({m["batch_size"] for m in metrics}):
        for name, top, bottom, target, limit in RATIOS:
            if (top, batch) in speed and (bottom, batch) in speed:
                value = speed[(top, batch)] / speed[(bottom, batch)]
                rows.append(
                    {
                        "ratio": name,
                        "batch_size": batch,
                        "value": round(value, 3),
                        "target": target,
                        "limit": limit,
                        "met": value >= target,
                    }  # fmt: skip
                )
    return rows


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = common.markdown_header(report, "Decoding speed", load_at_end=False) + [
        f"Model {s['model']} as base and as every ARM (fresh adapters, B random nonzero); "
        f"{s['new_tokens']} new tokens per row, no EOS; the fastest of "
        f"{s.get('rounds', 1) * s['repeats']} run(s) per setting"
        f"{', the methods taking turns' if s.get('rounds', 1) > 1 else ''}. "
        "tokens/s counts the whole batch, "
        "prefill included; decode tokens/s leaves the prefill out. Ratio: tokens/s over the "
        "base model alone at the same batch size. Memory: the worker process's resident set "
        "after loading the models and a warm-up call, its peak while decoding that batch, and "
        "its peak over the whole run (loading included).",
        "",
        "| method | batch | tokens/s | ratio to base | decode tokens/s | prefill s | "
        "RSS after load MB | decoding peak MB | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in report["metrics"]:
        ratio = "" if m["ratio_to_base"] is None else f"{m['ratio_to_base']:.2f}"
        lines.append(
            f"| {m['method']} | {m['batch_size']} | {m['tokens_per_s']:.1f} | {ratio} | "
            f"{m['decode_tokens_per_s']:.1f} | {m['prefill_seconds']:.2f} | "
            f"{m['rss_after_load_mb']} | {m['decode_peak_rss_mb']} | {m['peak_rss_mb']} |"
        )
    if report.get("ratios"):
        lines += [
            "",
            "Ratios of tokens/s (prefill included) against the targets; the limit is the "
            "forward-pass count's.",
            "",
            "| ratio | batch | measured | target | limit | met |",
            "|---|---:|---:|---:|---:|---|",
        ]
        for r in report["ratios"]:
            lines.append(
                f"| {r['ratio']} | {r['batch_size']} | {r['value']:.2f} | {r['target']:g} | "
                f"{r['limit']:g} | {'yes' if r['met'] else 'no'} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return common.answer(run_worker(args))

    paths = common.result_paths(args, "decode-quick" if args.quick else "decode")
    settings = {
        "model": args.model,
        "batch_sizes": args.batch_sizes,
        "new_tokens": args.new_tokens,
        "threads": args.threads,
        "repeats": args.repeats,
        "rounds": args.rounds,
        "methods": args.methods,
        "quick": args.quick,
    }
    report = common.start_report("decode.py", argv, settings)
    rounds = []
    for number in range(args.rounds):
        print(f"round {number + 1} of {args.rounds}", flush=True)
        rounds.append([m for method in args.methods for m in run_method(method, args)])
    metrics = best_of_rounds(rounds)
    add_ratios(metrics)
    report["metrics"] = metrics
    report["ratios"] = target_ratios(metrics)
    common.write_report(report, paths, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
