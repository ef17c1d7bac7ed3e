"""Training speed and memory of the ARMs at equal total rank (METHOD.md §1, §3, §4).

    .venv/bin/python bench/train.py --quick      # 1 pair of 64 tokens (~2 min)
    .venv/bin/python bench/train.py              # 4 pairs of 256 tokens, 2 rounds

One optimizer step of the training loop (`Trainer.train_step`: forward, loss, backward,
gradient clipping, AdamW) on the embedded default model, for

- `moslora`: UniARM, MoSLoRA r1 = r2 = 4, its loss with the global term;
- `pblora`: PARM, PBLoRA r1 = r2 = 4;
- `lora`: one GenARM member, a peft LoRA of rank 8 (GenARM trains one per objective);
- `moslora-full-head` / `lora-full-head`: the same with the reward computed from the LM head
  over the whole vocabulary at every position (the model's own forward, then a log-softmax
  and a gather), the reference for the head run on response positions only.

Each step sees n pairs, chosen and rejected in one batch of 2n rows, every row a prompt and a
response of fixed lengths (random token ids: the speed does not depend on the text). Each
method runs in its own worker process (its memory peak is its own): a warm-up step, then the
timed steps; the driver runs the methods in turn for several rounds, so that every method
sees the machine's changing load, and keeps each method's fastest step. Memory: the worker's
resident set after the warm-up step, its peak over the timed steps (the kernel's VmHWM, reset
after the warm-up) and its peak over the whole process, loading included.

Writes bench/results/train.json and train.md (train-quick.* with --quick); an existing result
is kept unless --overwrite.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (results files, machine, workers, memory)
from rounds import highest_memory  # noqa: E402  (memory peaks over the rounds)

METHODS = ("moslora", "pblora", "lora", "moslora-full-head", "lora-full-head")
TRAIN_METHOD = {"moslora": "uniarm", "pblora": "parm", "lora": "genarm"}
MEMORY_FIELDS = ("rss_after_warmup_mb", "step_peak_rss_mb", "peak_rss_mb")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 pair of 64 tokens, 1 round")
    parser.add_argument("--pairs", type=int, help="pairs per step (4; 1)")
    parser.add_argument("--tokens", type=int, help="tokens per row, prompt + response (256; 64)")
    parser.add_argument("--prompt-tokens", type=int, help="of which prompt (a quarter)")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--rounds", type=int, help="worker runs per method (2; 1)")
    parser.add_argument("--steps", type=int, help="timed steps per worker run (2; 1)")
    common.add_arguments(parser)
    parser.add_argument("--worker", choices=METHODS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.pairs = args.pairs or (1 if args.quick else 4)
    args.tokens = args.tokens or (64 if args.quick else 256)
    args.prompt_tokens = args.prompt_tokens or args.tokens // 4
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.steps = args.steps or (1 if args.quick else 2)
    if not 1 <= args.prompt_tokens <= args.tokens - 2:
        parser.error("--prompt-tokens must leave at least 2 response tokens")
    return args


# -- one method, in its own process ----------------------------------------------------------


def synthetic_pairs(count: int, prompt_tokens: int, response_tokens: int, vocab: int, eos: int):
    """`count` pairs of random token ids, every response ending in EOS, labels alternating."""
    import torch

    from uniarm.training.batching import EncodedPair

    gen = torch.Generator().manual_seed(0)
    low = min(1000, vocab // 2)  # past the special tokens

    def ids(n: int) -> tuple[int, ...]:
        return tuple(torch.randint(low, vocab, (n,), generator=gen).tolist())

    return [
        EncodedPair(
            prompt=ids(prompt_tokens),
            responses=(ids(response_tokens - 1) + (eos,), ids(response_tokens - 1) + (eos,)),
            winners=(i % 2, (i + 1) % 2),
            scores=None,
        )
        for i in range(count)
    ]


def full_head_rewards(arm, batch):
    """(rows,) rewards from the model's own forward: the LM head over every position and the
    whole vocabulary, a log-softmax, then the response tokens' log-probabilities gathered."""
    import torch

    logits = arm.model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    logprobs = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_logprobs = logprobs.gather(-1, batch.input_ids[:, 1:, None])[..., 0]
    positions = torch.arange(token_logprobs.shape[1], device=logits.device)
    first = (batch.prompt_lengths - 1)[:, None]
    scored = (positions >= first) & (positions < first + batch.response_lengths[:, None])
    return (token_logprobs * scored).sum(dim=1)


def train_config(method: str, args):
    from uniarm.training import TrainConfig

    kind = method.removesuffix("-full-head")
    return TrainConfig(
        method=TRAIN_METHOD[kind],
        task="safety",
        objectives=("helpful",) if kind == "lora" else None,  # one LoRA ARM, not two
        num_pairs=args.pairs,
        eval_pairs=0,
        batch_size=args.pairs,
        grad_accumulation=1,
        max_prompt_tokens=args.prompt_tokens,
        max_response_tokens=args.tokens - args.prompt_tokens,
        num_threads=args.threads,
    )


def build_trainer(method: str, args):
    """The training loop's Trainer for `method` over a fresh copy of the model."""
    import uniarm.training.loop as loop
    from uniarm.models import load_model
    from uniarm.training.arms import build_arm
    from uniarm.training.train import make_accelerator

    config = train_config(method, args)
    model, tokenizer = load_model(args.model)
    arm = build_arm(config, model, tokenizer)
    if method.endswith("-full-head"):
        loop.rewards = full_head_rewards  # what micro_step scores the batch with
    pairs = synthetic_pairs(
        args.pairs,
        config.max_prompt_tokens,
        config.max_response_tokens,
        len(tokenizer),
        tokenizer.eos_token_id,
    )
    trainer = loop.Trainer(
        config, arm, pairs, [], tokenizer.pad_token_id, None, make_accelerator(config), {}
    )
    trainer.arm.train()
    return trainer, arm.num_trainable()


def run_worker(args) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    memory = common.ProcessMemory()
    trainer, trainable = build_trainer(args.worker, args)
    start = time.perf_counter()
    trainer.train_step()  # warm-up: the optimizer state, the allocator's first blocks
    warmup_s = time.perf_counter() - start
    loaded_rss = memory.rss_mb()  # after a step: the lazily mapped weights are resident now

    can_reset = memory.reset_window()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        metrics = trainer.train_step()
        seconds.append(time.perf_counter() - start)
    return {
        "method": args.worker,
        "trainable_parameters": trainable,
        "step_seconds": [round(s, 3) for s in seconds],
        "warmup_seconds": round(warmup_s, 3),
        "loss": metrics["loss"],
        "rss_after_warmup_mb": round(loaded_rss),
        "step_peak_rss_mb": round(memory.window_peak_mb()) if can_reset else None,
        "peak_rss_mb": round(memory.process_peak_mb()),
    }


# -- the driver ------------------------------------------------------------------------------


def run_method(method: str, args) -> dict:
    extra = ["--pairs", str(args.pairs), "--tokens", str(args.tokens),
             "--prompt-tokens", str(args.prompt_tokens), "--steps", str(args.steps)]  # fmt: skip
    return common.call_worker(__file__, method, args, extra)


def summarise(runs: dict[str, list[dict]], pairs: int) -> list[dict]:
    """Each method's fastest step over all rounds, its memory, and the ratios of the targets."""
    metrics = []
    for method, method_runs in runs.items():
        steps = [s for run in method_runs for s in run["step_seconds"]]
        best = min(steps)
        metrics.append({
            "method": method,
            "trainable_parameters": method_runs[0]["trainable_parameters"],
            "step_seconds": best,
            "all_step_seconds": steps,
            "pairs_per_s": round(pairs / best, 4),
            "loss": method_runs[0]["loss"],
            **highest_memory(method_runs, MEMORY_FIELDS),
        })  # fmt: skip
    by = {m["method"]: m for m in metrics}
    for m in metrics:
        kind = m["method"].removesuffix("-full-head")
        if "lora" in by:
            m["step_time_vs_lora"] = round(m["step_seconds"] / by["lora"]["step_seconds"], 3)
        if m["method"].endswith("-full-head") and kind in by:
            m["full_head_slowdown"] = round(m["step_seconds"] / by[kind]["step_seconds"], 3)
            peaks = m["step_peak_rss_mb"], by[kind]["step_peak_rss_mb"]
            m["full_head_extra_peak_mb"] = None if None in peaks else peaks[0] - peaks[1]
    return metrics


def markdown(report: dict) -> str:
    s = report["settings"]
    lines = common.markdown_header(report, "Training speed and memory") + [
        f"Model {s['model']}, fp32; one optimizer step (Trainer.train_step: forward, loss, "
        f"backward, clipping, AdamW) on {s['pairs']} pair(s) of {s['tokens']} tokens per row "
        f"({s['prompt_tokens']} prompt + {s['tokens'] - s['prompt_tokens']} response), chosen "
        f"and rejected in one batch of {2 * s['pairs']} rows; adapters on "
        "q/k/v. MoSLoRA and PBLoRA r1 = r2 = 4 (alpha 8), LoRA (peft) r = 8 (alpha 16): equal "
        "total rank. The LM head runs on response positions only, except in the -full-head "
        "rows (every position, the whole vocabulary). The fastest of "
        f"{s['rounds']} round(s) × {s['steps']} step(s), the methods taking turns by round, "
        "each in its own process. Targets: MoSLoRA's step within 10% of LoRA's; peak memory "
        "under 6 GB.",
        "",
        "| method | trainable params | step s | pairs/s | step time / LoRA | "
        "full head: slowdown | RSS after warm-up MB | step peak MB | process peak MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for m in report["metrics"]:
        vs_lora = m.get("step_time_vs_lora")
        slowdown = m.get("full_head_slowdown")
        lines.append(
            f"| {m['method']} | {m['trainable_parameters']:,} | {m['step_seconds']:.2f} | "
            f"{m['pairs_per_s']:.3f} | {'' if vs_lora is None else f'{vs_lora:.3f}'} | "
            f"{'' if slowdown is None else f'{slowdown:.3f}'} | {m['rss_after_warmup_mb']} | "
            f"{m['step_peak_rss_mb']} | {m['peak_rss_mb']} |"
        )
    lines += ["", "All timed steps (s): " + "; ".join(
        f"{m['method']} {', '.join(f'{x:.2f}' for x in m['all_step_seconds'])}"
        for m in report["metrics"]
    ) + "."]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        return common.answer(run_worker(args))

    paths = common.result_paths(args, "train-quick" if args.quick else "train")
    settings = {
        "model": args.model,
        "pairs": args.pairs,
        "tokens": args.tokens,
        "prompt_tokens": args.prompt_tokens,
        "threads": args.threads,
        "rounds": args.rounds,
        "steps": args.steps,
        "methods": args.methods,
        "quick": args.quick,
    }
    report = common.start_report("train.py", argv, settings)
    runs: dict[str, list[dict]] = {m: [] for m in args.methods}
    for round_ in range(args.rounds):
        for method in args.methods:
            run = run_method(method, args)
            runs[method].append(run)
            shown = ", ".join(f"{s:.2f}" for s in run["step_seconds"])
            print(f"  round {round_ + 1} {method:18s} step {shown} s, "
                  f"peak {run['step_peak_rss_mb']} MB", flush=True)  # fmt: skip
    report["metrics"] = summarise(runs, args.pairs)
    common.write_report(report, paths, markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
