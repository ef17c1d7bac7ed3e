"""Data-parallel training on 2 CPU processes (torchrun, gloo) equals one process.

On CPUs `accelerate launch --cpu` starts several processes only through MPI (mpirun), so the
processes here come from `torch.distributed.run`; the loop's Accelerator picks them up.

Same effective batch: one process with batch 4 against two with batch 2 each; every step sees
the same pairs and preference, so the trained adapters must agree within float tolerance.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from training_helpers import save_tiny_model, tiny_model

from uniarm.adapters import PreferenceARM

HERE = Path(__file__).resolve().parent
SCRIPT = """
import sys
from pathlib import Path
from training_helpers import planted_pairs, tiny_config
from uniarm.training import train

model_dir, out, batch = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
config = tiny_config(model_dir, out, batch_size=batch, grad_accumulation=2, max_steps=3,
                     eval_pairs=6, save_interval=0)
train(config, planted_pairs(40, seed=1), planted_pairs(6, seed=2))
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(args: list[str], tmp_path: Path) -> None:
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "TQDM_DISABLE": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent)]),
    }
    done = subprocess.run(args, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


@pytest.mark.slow
def test_two_processes_match_one(tmp_path, tokenizer):
    model_dir = save_tiny_model(tmp_path / "model", tokenizer)
    script = tmp_path / "train_script.py"
    script.write_text(SCRIPT)
    run([sys.executable, str(script), str(model_dir), str(tmp_path / "one"), "4"], tmp_path)
    launch = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(free_port()),
    ]
    run([*launch, str(script), str(model_dir), str(tmp_path / "two"), "2"], tmp_path)

    runs = {n: json.loads((tmp_path / n / "run.json").read_text()) for n in ("one", "two")}
    assert runs["one"]["processes"] == 1 and runs["two"]["processes"] == 2
    assert runs["one"]["status"] == runs["two"]["status"] == "finished"
    weights = {
        n: PreferenceARM.load(
            tmp_path / n / "arm", model=tiny_model(tokenizer), tokenizer=tokenizer
        ).adapter_state()
        for n in ("one", "two")
    }
    assert any(v.abs().sum() > 0 for k, v in weights["one"].items() if k.endswith("shared_B"))
    # Adam divides by sqrt(v): a near-zero gradient summed in another order can move its entry
    # by a little; 5e-5 is 0.5% of one step at lr 1e-2
    for name, value in weights["one"].items():
        torch.testing.assert_close(weights["two"][name], value, rtol=1e-3, atol=5e-5)
    losses = [
        [
            (r["step"], r["loss"])
            for r in map(json.loads, (tmp_path / n / "metrics.jsonl").read_text().splitlines())
            if r["kind"] == "train"
        ]
        for n in ("one", "two")
    ]
    for (s1, l1), (s2, l2) in zip(*losses, strict=True):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-4)
    assert runs["one"]["final_eval"] == pytest.approx(runs["two"]["final_eval"])
