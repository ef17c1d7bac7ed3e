"""What merging an ARM costs, against the base model's forwards (METHOD.md §3, merging).

    .venv/bin/python bench/merge_cost.py          # a few seconds of CPU after loading

A `PreferenceGuide` merges the adapters of a UniARM (MoSLoRA) or PARM (PBLoRA) when a batch
holds one preference, and used to undo it at the end of every `generate` call. This times
`PreferenceARM.merge` and `unmerge` on the embedded default model (fresh adapters, B random
nonzero, as in bench/decode.py), the preference alternating between two values so that every
merge is real; for scale, one base forward of a ~60-token prompt (the prefill) and of one token
(a decoding step) at batch 1; and one whole `generate` call of one new token at batch 1 with a
merged UniARM, its merge undone after every call (`keep_merge=False`, the old behaviour) or
kept, with the part of the call outside the two forwards. One process, one thread; the median
and the fastest of `--repeats` runs.

Writes bench/results/merge-cost.json and merge-cost.md; an existing result is kept unless
--overwrite.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (results files, machine)
import decode  # noqa: E402  (the fresh adapters with B random nonzero)
import sweep  # noqa: E402  (the step timers around the engine's calls)

PROMPT = (
    "How do I bake a simple loaf of bread at home? Please give me the steps, the ingredients, "
    "how long it takes, and what can go wrong."
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=7, help="timed runs of each operation")
    common.add_arguments(parser)
    return parser.parse_args(argv)


def timed(fn, repeats: int, setup=None) -> dict:
    """The median and fastest of `repeats` calls of `fn`, each after an untimed `setup()`."""
    seconds = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return {"median_ms": round(statistics.median(seconds) * 1000, 1),
            "min_ms": round(min(seconds) * 1000, 1)}  # fmt: skip


def time_merges(arm, repeats: int) -> tuple[dict, dict]:
    """`merge` from the unmerged ARM (the preference alternating), and `unmerge` after one."""
    preferences = iter([[0.5, 0.5], [0.3, 0.7]] * repeats)
    merge = timed(lambda: arm.merge(next(preferences)), repeats, setup=arm.unmerge)
    unmerge = timed(arm.unmerge, repeats, setup=lambda: arm.merge([0.5, 0.5]))
    return merge, unmerge


def merge_rows(args) -> list[dict]:
    """`merge` and `unmerge` of a fresh UniARM (MoSLoRA) and PARM (PBLoRA)."""
    from uniarm.adapters import AdapterConfig, PreferenceARM
    from uniarm.models import load_model

    rows = []
    for adapter in ("moslora", "pblora"):
        model, tokenizer = load_model(args.model)
        arm = PreferenceARM(model, tokenizer, decode.OBJECTIVES[:2], AdapterConfig(adapter=adapter))
        decode.randomise_zero_parameters(arm.trainable_parameters())
        merge, unmerge = time_merges(arm, args.repeats)
        layers = len(arm.layers)
        rows += [{"operation": f"{adapter} merge", "layers": layers, **merge},
                 {"operation": f"{adapter} unmerge", "layers": layers, **unmerge}]  # fmt: skip
    return rows


def base_rows(base, tokenizer, repeats: int) -> list[dict]:
    """One base forward of the prompt (a prefill) and of one token (a decoding step)."""
    import torch

    from uniarm.decoding.guides import new_cache, next_token_logits
    from uniarm.decoding.prompts import encode_prompts

    (prompt,) = encode_prompts(tokenizer, [PROMPT], chat_template=True, budget=1 << 30)
    ids = torch.tensor([prompt.ids])
    mask, positions = torch.ones_like(ids), torch.arange(ids.shape[1])[None]
    length = [ids.shape[1]]

    def prefill():
        cache = new_cache(base)
        next_token_logits(base, ids, mask, positions, cache)
        return cache

    def step():
        n = length[0]
        next_token_logits(base, ids[:, -1:], torch.ones(1, n + 1), torch.tensor([[n]]), cache)
        length[0] += 1

    with torch.no_grad():
        prefill()  # warm-up
        rows = [{"operation": f"base prefill, {ids.shape[1]} tokens, batch 1",
                 **timed(prefill, repeats)}]  # fmt: skip
        cache = prefill()
        rows.append({"operation": "base decoding step, batch 1", **timed(step, repeats)})
    return rows


def call_rows(base, tokenizer, args) -> list[dict]:
    """One `generate` call of one new token at batch 1 with a merged UniARM, its merge undone
    after every call or kept; the time outside the base's and the ARM's forwards is the rest
    (merge, unmerge, prompt encoding)."""
    from uniarm.decoding import DecodingConfig, GuidedDecoder

    timer, decoders = sweep.StepTimer(), {}
    for keep in (False, True):
        (guide,), _ = decode.build_guides("uniarm-merged", args.model)
        guide.keep_merge = keep
        decoders[keep] = GuidedDecoder(base, tokenizer, [guide], eos_token_ids=[-1])
        timer.install(decoders[keep])
    config = DecodingConfig(max_new_tokens=1, batch_size=1)
    totals, rests = {False: [], True: []}, {False: [], True: []}
    for repeat in range(args.repeats + 1):  # the two take turns; the first round warms up
        for keep, decoder in decoders.items():
            timer.take(0.0)
            start = time.perf_counter()
            decoder.generate([PROMPT], [[0.5, 0.5]], config=config)
            total = time.perf_counter() - start
            if repeat:
                totals[keep].append(total)
                rests[keep].append(timer.take(total)["other"])
    rows = []
    for keep, label in ((False, "merge undone after each call"), (True, "merge kept")):
        for name, seconds in (("whole call", totals[keep]), ("outside the forwards", rests[keep])):
            rows.append({"operation": f"UniARM merged, 1 new token, batch 1, {label}: {name}",
                         "median_ms": round(statistics.median(seconds) * 1000, 1),
                         "min_ms": round(min(seconds) * 1000, 1)})  # fmt: skip
    return rows


def measure(args) -> list[dict]:
    import torch

    from uniarm.models import load_model

    torch.set_num_threads(args.threads)
    base, tokenizer = load_model(args.model)
    return (
        merge_rows(args)
        + base_rows(base, tokenizer, args.repeats)
        + call_rows(base, tokenizer, args)
    )


def markdown(report: dict) -> str:
    lines = common.markdown_header(report, "What merging an ARM costs") + [
        f"Model {report['settings']['model']}, fresh adapters with B random nonzero (MoSLoRA "
        "and PBLoRA r1 = r2 = 4 on q/k/v); one process; the median and the fastest of "
        f"{report['settings']['repeats']} runs of each operation.",
        "",
        "| operation | adapted layers | median ms | fastest ms |",
        "|---|---:|---:|---:|",
    ]
    for r in report["rows"]:
        lines.append(
            f"| {r['operation']} | {r.get('layers', '')} | {r['median_ms']} | {r['min_ms']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    paths = common.result_paths(args, "merge-cost")
    settings = {"model": args.model, "threads": args.threads, "repeats": args.repeats}
    report = common.start_report("merge_cost.py", argv, settings)
    report["rows"] = measure(args)
    common.write_report(report, paths, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
