"""Decoding speed of guided decoding against the base model alone (METHOD.md §2).

    .venv/bin/python bench/decode.py --quick       # batch 1 and 4, 8 new tokens (~2 min)
    .venv/bin/python bench/decode.py               # batch 1, 8 and 32, 32 new tokens

Base and ARMs are the embedded default model (SmolLM2-135M-Instruct), the ARMs with freshly
initialised adapters whose B matrices are random and nonzero, so that the adapter path is really
computed. Every response runs to the full length (no EOS), so all methods decode the same number
of tokens. Each method runs in its own process, so that its peak memory is its own; tokens/s
are compared with the base model alone from the same run.

Writes bench/results/decode.json (command, date, machine, settings, metrics) and decode.md
(decode-quick.* with --quick); an existing result is kept unless --overwrite.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
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
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--repeats", type=int, help="runs per setting, the fastest kept (2; 1)")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--output-dir", type=Path, default=RESULTS)
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results")
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batch_sizes = args.batch_sizes or ([1, 4] if args.quick else [1, 8, 32])
    args.new_tokens = args.new_tokens or (8 if args.quick else 32)
    args.repeats = args.repeats or (1 if args.quick else 2)
    return args


# -- one method, in its own process ---------------------------------------------------------


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) so that it covers what follows only."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def window_peak_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


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


def measure(decoder, method: str, objectives, batch: int, new_tokens: int) -> dict:
    """Decode `batch` distinct prompts once; speed, prefill time and peak memory."""
    from uniarm.decoding import DecodingConfig

    prompts = [f"{QUESTIONS[i % len(QUESTIONS)]} (#{i + 1})" for i in range(batch)]
    config = DecodingConfig(max_new_tokens=new_tokens, batch_size=batch)
    first_step: list[float] = []

    def note_prefill(step):
        if step.step == 0:
            first_step.append(time.perf_counter())

    can_reset = reset_peak()
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
        "decode_peak_rss_mb": round(window_peak_mb()) if can_reset else None,
    }


def run_worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from uniarm.decoding import DecodingConfig, GuidedDecoder
    from uniarm.models import load_model

    base, tokenizer = load_model(args.model)
    guides, objectives = build_guides(args.worker, args.model)
    # EOS can never match: every row decodes exactly new_tokens tokens
    decoder = GuidedDecoder(base, tokenizer, guides, eos_token_ids=[-1])
    decoder.generate(QUESTIONS[:1], preference_rows(args.worker, objectives, 1),
                     config=DecodingConfig(max_new_tokens=2))  # fmt: skip  # warm-up
    loaded_rss = rss_mb()  # after a forward: the lazily mapped weights are all resident now

    metrics = []
    for batch in args.batch_sizes:
        runs = [
            measure(decoder, args.worker, objectives, batch, args.new_tokens)
            for _ in range(args.repeats)
        ]
        best = max(runs, key=lambda m: m["tokens_per_s"])  # the least disturbed by other jobs
        metrics.append(best)
        speed = best["tokens_per_s"]
        print(f"  {args.worker:15s} batch {batch:3d}: {speed:7.2f} tok/s", flush=True)
    for m in metrics:
        m["rss_after_load_mb"] = round(loaded_rss)
        m["peak_rss_mb"] = round(peak_rss_mb())
    return {"metrics": metrics}


# -- the driver -----------------------------------------------------------------------------


def machine() -> dict:
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
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }


def run_method(method: str, args) -> list[dict]:
    command = [sys.executable, __file__, "--worker", method, "--threads", str(args.threads),
               "--model", args.model, "--new-tokens", str(args.new_tokens),
               "--repeats", str(args.repeats),
               "--batch-sizes", *map(str, args.batch_sizes)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TQDM_DISABLE": "1"}
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    lines = done.stdout.splitlines()
    for line in lines:
        if not line.startswith("RESULT "):
            print(line, flush=True)
    results = [line for line in lines if line.startswith("RESULT ")]
    if done.returncode != 0 or not results:
        raise SystemExit(f"the {method} worker failed (exit {done.returncode})")
    return json.loads(results[-1][len("RESULT ") :])["metrics"]


def add_ratios(metrics: list[dict]) -> None:
    base = {m["batch_size"]: m for m in metrics if m["method"] == "base"}
    for m in metrics:
        ref = base.get(m["batch_size"])
        ratio = None if ref is None else m["tokens_per_s"] / ref["tokens_per_s"]
        m["ratio_to_base"] = None if ratio is None else round(ratio, 3)


def markdown(report: dict) -> str:
    s, mach = report["settings"], report["machine"]
    lines = [
        "# Decoding speed",
        "",
        f"`{report['command']}` on {report['date']}: {mach['cpu']}, {mach['cores']} cores "
        f"(load average {mach['load_average']} at the start), {s['threads']} torch thread(s), "
        f"torch {mach['torch']}, transformers {mach['transformers']}.",
        "",
        f"Model {s['model']} as base and as every ARM (fresh adapters, B random nonzero); "
        f"{s['new_tokens']} new tokens per row, no EOS; the fastest of {s['repeats']} run(s) "
        "per setting. tokens/s counts the whole batch, "
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
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print("RESULT " + json.dumps(run_worker(args)), flush=True)
        return 0

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from uniarm.io import write_json, write_text

    stem = "decode-quick" if args.quick else "decode"
    json_path, md_path = args.output_dir / f"{stem}.json", args.output_dir / f"{stem}.md"
    if not args.overwrite and (json_path.exists() or md_path.exists()):
        raise SystemExit(f"{json_path} exists: pass --overwrite to replace it")

    started = machine()
    metrics = []
    for method in args.methods:
        metrics += run_method(method, args)
    add_ratios(metrics)
    report = {
        "command": " ".join(["python", "bench/decode.py", *(argv or sys.argv[1:])]),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": started | {"load_average_end": [round(x, 2) for x in os.getloadavg()]},
        "settings": {
            "model": args.model,
            "batch_sizes": args.batch_sizes,
            "new_tokens": args.new_tokens,
            "threads": args.threads,
            "repeats": args.repeats,
            "methods": args.methods,
            "quick": args.quick,
        },
        "metrics": metrics,
    }
    write_json(json_path, report)
    write_text(md_path, markdown(report))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
