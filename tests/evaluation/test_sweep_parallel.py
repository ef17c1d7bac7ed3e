"""The sweep data-parallel: N processes write what one process writes, and resume from parts.

The slow tests run a real tiny guided decoder (a random 2-layer Llama and a random MoSLoRA
ARM, both saved as folders) once as a plain process and once as 2 processes of
`torch.distributed.run` over gloo, and compare the files byte for byte. The fast ones run the
sweep's protocol in two threads with a deterministic writer (from test_sweep.py).
"""

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch
from test_sweep import LengthOracle, Writer, config

from uniarm.evaluation.sweep import evaluate

HERE = Path(__file__).resolve().parent

SCRIPT = """
import json, os, sys
from pathlib import Path

import numpy as np

from uniarm.evaluation import run
from uniarm.evaluation.config import EvalConfig


class VowelOracle:
    name = "vowel-test-oracle"
    objectives = ("helpful", "harmless")

    def score(self, prompts, responses, batch_size=16):
        return np.array([[len(r) / 10, sum(map(r.count, "aeiou"))] for r in responses], float)


base, arm, data_root, out, logs = sys.argv[1:6]
rank = os.environ.get("RANK", "0")
make_generator = run.make_generator


def logged(config, device="cpu"):  # records which rows this process decoded
    generate = make_generator(config, device)

    def wrapped(conversations, preferences):
        with open(Path(logs) / f"rows-{rank}.jsonl", "a") as f:
            for c, p in zip(conversations, preferences, strict=True):
                f.write(json.dumps([c[-1].content, list(p)]) + "\\n")
        return generate(conversations, preferences)

    return wrapped


run.make_generator = logged
config = EvalConfig(
    task="safety", method="tiny", arm=Path(arm), base_model=base, data_root=Path(data_root),
    num_prompts=5, max_new_tokens=6, batch_size=4, prompts_per_chunk=2, edge_step=0.5,
    output=Path(out),
)
summary = run.run_evaluation(config, oracle=VowelOracle(), quiet=True).summary
(Path(logs) / f"summary-{rank}.json").write_text(json.dumps(summary))
"""


# -- helpers ---------------------------------------------------------------------------------


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(work: Path, models: dict, data_root: Path, out: Path, processes: int) -> Path:
    """Run the sweep script as one plain process or as `processes` torchrun workers."""
    logs = work / f"logs-{out.name}"
    logs.mkdir()
    script = work / "sweep_script.py"
    script.write_text(SCRIPT)
    launcher = [sys.executable]
    if processes > 1:
        launcher += ["-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
        launcher += ["--master_addr", "127.0.0.1", "--master_port", str(free_port())]
    args = [str(script), str(models["base"]), str(models["arm"]), str(data_root), str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(
        [*launcher, *args, str(logs)],
        env=env,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return logs


def decoded(logs: Path, rank: int) -> list[tuple[str, tuple[float, ...]]]:
    path = logs / f"rows-{rank}.jsonl"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [(text, tuple(p)) for text, p in map(json.loads, lines)]


def rows_of(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "generations.jsonl").read_text().splitlines()]


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


@pytest.fixture(scope="module")
def models(tmp_path_factory, tokenizer) -> dict:
    """A peaked tiny base model and a MoSLoRA ARM with random (nonzero) adapters, as folders."""
    sys.path.insert(0, str(HERE.parent / "decoding"))
    from decoding_helpers import OBJECTIVES, peaked_llama

    from uniarm.adapters import AdapterConfig, PreferenceARM
    from uniarm.models import load_model

    work = tmp_path_factory.mktemp("models")
    peaked_llama(tokenizer, seed=0).save_pretrained(work / "base")
    peaked_llama(tokenizer, seed=4).save_pretrained(work / "arm-base")
    for folder in ("base", "arm-base"):
        tokenizer.save_pretrained(work / folder)
    model, arm_tokenizer = load_model(str(work / "arm-base"))
    arm = PreferenceARM(model, arm_tokenizer, OBJECTIVES, AdapterConfig(adapter="moslora"))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for param in arm.trainable_parameters():
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    arm.save(work / "arm")
    return {"base": work / "base", "arm": work / "arm"}


@pytest.fixture(scope="module")
def one_process(tmp_path_factory, models, data_root) -> Path:
    work = tmp_path_factory.mktemp("one")
    launch(work, models, data_root, work / "out", processes=1)
    return work / "out"


def task_prompts(data_root: Path):
    from uniarm.data.tasks import eval_prompts

    return eval_prompts("safety", data_root, split="test", seed=0, limit=5)


# -- two real processes (torchrun, gloo) -----------------------------------------------------


@pytest.mark.slow
def test_two_processes_write_what_one_writes(tmp_path, models, data_root, one_process):
    logs = launch(tmp_path, models, data_root, tmp_path / "out", processes=2)
    two = tmp_path / "out"

    for name in ("generations.jsonl", "scores.jsonl", "summary.json", "eval.json"):
        assert (two / name).read_text() == (one_process / name).read_text(), name
    assert not list(two.glob("generations.part-*"))
    summary = json.loads((two / "summary.json").read_text())
    for rank in (0, 1):  # every process returns the main process's summary
        assert json.loads((logs / f"summary-{rank}.json").read_text()) == summary

    # whole prompts, dealt round-robin: process 0 took prompts 0, 2, 4 and process 1 took 1, 3
    prompts = [p.conversation[-1].content for p in task_prompts(data_root)]
    grid = {tuple(p) for p in summary["grid"]}
    for rank, share in ((0, [0, 2, 4]), (1, [1, 3])):
        rows = decoded(logs, rank)
        assert sorted(rows) == sorted((prompts[i], g) for i in share for g in grid)

    # the preference changes the replies, so rows mixed up across preferences would show
    by_prompt: dict[str, set[str]] = {}
    for row in rows_of(two):
        by_prompt.setdefault(row["prompt_id"], set()).add(row["response"])
    assert max(len(replies) for replies in by_prompt.values()) > 1


@pytest.mark.slow
def test_two_processes_resume_from_the_parts_of_a_killed_run(
    tmp_path, models, data_root, one_process
):
    reference = rows_of(one_process)
    ids = [p.prompt_id for p in task_prompts(data_root)]
    of = {i: [r for r in reference if r["prompt_id"] == ids[i]] for i in range(5)}
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(one_process / "eval.json", out)
    # what a killed run left: merged rows, a part per process (one ends in a torn line), and
    # a part of a run with more processes that repeats a row
    (out / "generations.jsonl").write_text(jsonl(of[1]))
    (out / "generations.part-0.jsonl").write_text(jsonl(of[0] + of[4][:2]))
    (out / "generations.part-1.jsonl").write_text(jsonl(of[3]) + jsonl(of[4][2:])[:40])
    (out / "generations.part-5.jsonl").write_text(jsonl(of[0][:1]))

    logs = launch(tmp_path, models, data_root, out, processes=2)

    assert (out / "generations.jsonl").read_text() == jsonl(reference)
    assert not list(out.glob("generations.part-*"))
    assert (out / "summary.json").read_text() == (one_process / "summary.json").read_text()
    # only the rest was decoded: prompt 2 (to process 0) and prompt 4's torn row (to process 1)
    prompts = [p.conversation[-1].content for p in task_prompts(data_root)]
    assert sorted(decoded(logs, 0)) == sorted((prompts[2], tuple(r["preference"])) for r in of[2])
    assert decoded(logs, 1) == [(prompts[4], tuple(of[4][2]["preference"]))]


# -- the protocol in two threads, with a deterministic writer ----------------------------------


def sweep(tmp_path: Path, name: str, data_root: Path):
    """The settings of test_sweep.py, results in tmp_path/name/out (the same ARM path)."""
    return config(tmp_path / name, data_root, arm=tmp_path / "arm")


class ThreadProcess:
    """One of `count` threads standing in for processes; barriers are a threading.Barrier."""

    def __init__(self, index: int, barrier: threading.Barrier):
        self.process_index, self.num_processes = index, barrier.parties
        self.is_main_process = index == 0
        self.device = "cpu"
        self.barrier = barrier

    def wait_for_everyone(self) -> None:
        self.barrier.wait(timeout=60)


def in_threads(cfg, writers: list[Writer]) -> list[dict]:
    barrier = threading.Barrier(len(writers))
    summaries, errors = [None] * len(writers), []

    def work(rank: int) -> None:
        try:
            oracle = LengthOracle() if rank == 0 else None
            process = ThreadProcess(rank, barrier)
            summaries[rank] = evaluate(cfg, writers[rank], oracle, True, process).summary
        except BaseException as exc:  # noqa: BLE001  (re-raised below, in the test's thread)
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=work, args=(r,)) for r in range(len(writers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return summaries


def test_threads_as_processes_share_the_prompts_and_merge(tmp_path, data_root):
    one = evaluate(sweep(tmp_path, "one", data_root), Writer(), LengthOracle(), quiet=True)
    writers = [Writer(), Writer()]
    summaries = in_threads(sweep(tmp_path, "two", data_root), writers)

    assert summaries[0] == summaries[1] == one.summary
    for name in ("generations.jsonl", "scores.jsonl", "summary.json"):
        assert (tmp_path / "two/out" / name).read_text() == (one.folder / name).read_text()
    # 5 prompts under 11 preferences: 3 prompts to thread 0 (chunks of 2, 1), 2 to thread 1
    assert [w.rows for w in writers] == [3 * 11, 2 * 11]
    assert [w.calls for w in writers] == [2, 1]
    assert not list((tmp_path / "two/out").glob("generations.part-*"))


def test_one_process_resumes_from_the_parts_of_a_parallel_run(tmp_path, data_root):
    one = evaluate(sweep(tmp_path, "one", data_root), Writer(), LengthOracle(), quiet=True)
    reference = rows_of(one.folder)
    out = tmp_path / "two/out"
    out.mkdir(parents=True)
    shutil.copy(one.folder / "eval.json", out)
    # process 0 finished its first chunk (prompts 0, 2), process 1 was killed in its first
    (out / "generations.part-0.jsonl").write_text(jsonl(reference[:11] + reference[22:33]))
    (out / "generations.part-1.jsonl").write_text(jsonl(reference[11:14])[:-5])

    writer = Writer()
    outcome = evaluate(sweep(tmp_path, "two", data_root), writer, LengthOracle(), quiet=True)
    assert writer.rows == 5 * 11 - 22 - 2  # the torn third row of prompt 1 is decoded again
    assert (out / "generations.jsonl").read_text() == jsonl(reference)
    assert outcome.summary == one.summary
    assert not list(out.glob("generations.part-*"))


def test_a_torn_last_line_is_cut_before_appending(tmp_path, data_root):
    one = evaluate(sweep(tmp_path, "one", data_root), Writer(), LengthOracle(), quiet=True)
    text = (one.folder / "generations.jsonl").read_text()
    out = tmp_path / "two/out"
    out.mkdir(parents=True)
    shutil.copy(one.folder / "eval.json", out)
    lines = text.splitlines(keepends=True)
    (out / "generations.jsonl").write_text("".join(lines[:30]) + lines[30][:25])  # a kill

    writer = Writer()
    evaluate(sweep(tmp_path, "two", data_root), writer, LengthOracle(), quiet=True)
    assert writer.rows == 55 - 30
    assert (out / "generations.jsonl").read_text() == text
