"""End-to-end training runs on a tiny model: learning, checkpoints, resume, reuse, bad input."""

import json

import pytest
import torch
from training_helpers import planted_pairs, save_tiny_model, tiny_config, tiny_model

from uniarm.adapters import PreferenceARM
from uniarm.adapters.lora import GenARM
from uniarm.errors import UniarmError
from uniarm.io import read_jsonl
from uniarm.training import train
from uniarm.training.batching import encode_pairs
from uniarm.training.evaluate import pair_rewards

OBJECTIVES = ("helpful", "harmless")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    return save_tiny_model(tmp_path_factory.mktemp("tiny") / "model", tokenizer)


@pytest.fixture(scope="module")
def pairs():
    return planted_pairs(96, seed=1), planted_pairs(32, seed=2)


def load_preference_arm(path, tokenizer):
    return PreferenceARM.load(path, model=tiny_model(tokenizer), tokenizer=tokenizer)


def accuracy_under(arm, encoded, preference, objective_index, pad_id):
    r = pair_rewards(arm, encoded, pad_id, 16, "cpu", preference=preference)
    winners = torch.tensor([p.winners[objective_index] for p in encoded])
    better = torch.where(winners == 0, r[:, 0] - r[:, 1], r[:, 1] - r[:, 0])
    return float((better > 0).float().mean())


def test_uniarm_learns_to_rank_by_the_preferred_objective(tmp_path, tokenizer, model_dir, pairs):
    train_pairs, held_out = pairs
    config = tiny_config(
        model_dir,
        tmp_path / "run",
        batch_size=8,
        max_steps=60,
        lr=3e-2,
        save_interval=0,
        log_interval=10,
    )
    path = train(config, *pairs)
    arm = load_preference_arm(path, tokenizer)
    encoded = encode_pairs(tokenizer, held_out, OBJECTIVES, 48, 16)
    pad = tokenizer.pad_token_id
    # untrained: B = 0, so both preferences give the base model's rewards (near chance)
    assert accuracy_under(arm, encoded, [1.0, 0.0], 0, pad) >= 0.9  # ranks by A
    assert accuracy_under(arm, encoded, [0.0, 1.0], 1, pad) >= 0.9  # ranks by B
    assert accuracy_under(arm, encoded, [1.0, 0.0], 1, pad) <= 0.1  # ...and not by B
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["status"] == "finished" and run["final_eval"]["helpful"] >= 0.9
    rows = read_jsonl(tmp_path / "run" / "metrics.jsonl")
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert [r["step"] for r in train_rows] == [10, 20, 30, 40, 50, 60]
    assert train_rows[-1]["loss/global"] < train_rows[0]["loss/global"]
    assert {"accuracy/helpful", "accuracy/harmless", "pairs_per_s", "lr"} <= set(train_rows[0])


def test_genarm_members_learn_their_own_objective(tmp_path, tokenizer, model_dir, pairs):
    config = tiny_config(
        model_dir,
        tmp_path / "run",
        method="genarm",
        batch_size=8,
        max_steps=12,
        lr=3e-2,
        beta_r=1.0,
    )
    path = train(config, *pairs)
    meta = json.loads((path / "genarm.json").read_text())
    assert meta["method"] == "genarm" and meta["members"] == {
        "helpful": "helpful",
        "harmless": "harmless",
    }
    assert meta["lora"]["rank"] == 8 and meta["training"]["method"] == "genarm"
    arm = GenARM.load(path, model=tiny_model(tokenizer), tokenizer=tokenizer)
    encoded = encode_pairs(tokenizer, pairs[1], OBJECTIVES, 48, 16)
    for index, objective in enumerate(OBJECTIVES):
        r = pair_rewards(arm, encoded, tokenizer.pad_token_id, 16, "cpu", objective=objective)
        winners = torch.tensor([p.winners[index] for p in encoded])
        better = torch.where(winners == 0, r[:, 0] - r[:, 1], r[:, 1] - r[:, 0])
        assert float((better > 0).float().mean()) >= 0.9, objective


def test_parm_trains_and_its_checkpoint_loads(tmp_path, tokenizer, model_dir, pairs):
    path = train(tiny_config(model_dir, tmp_path / "run", method="parm"), *pairs)
    arm = load_preference_arm(path, tokenizer)
    assert arm.method == "parm" and arm.adapter_config.adapter == "pblora"
    assert arm.training_config["global_weight"] == 0.0 and arm.training_config["step"] == 4


def final_weights(path, tokenizer):
    return load_preference_arm(path, tokenizer).adapter_state()


class Killed(Exception):
    pass


@pytest.mark.parametrize("method", ["uniarm", "genarm"])
def test_resume_after_a_kill_equals_an_uninterrupted_run(
    tmp_path, tokenizer, model_dir, pairs, method
):
    settings = dict(method=method, max_steps=6, save_interval=2, log_interval=1)
    whole = train(tiny_config(model_dir, tmp_path / "whole", **settings), *pairs)

    def kill_at_5(trainer):
        if trainer.step == 5:  # after the checkpoint of step 4 and one more unsaved step
            raise Killed

    config = tiny_config(model_dir, tmp_path / "killed", **settings)
    with pytest.raises(Killed):
        train(config, *pairs, on_step=kill_at_5)
    state = torch.load(tmp_path / "killed" / "checkpoint" / "trainer.pt", weights_only=True)
    assert state["step"] == 4
    seen = []
    resumed = train(config, *pairs, on_step=lambda trainer: seen.append(trainer.step))
    assert seen == [5, 6]  # resumed at step 4

    if method == "genarm":
        a = GenARM.load(whole, model=tiny_model(tokenizer)).adapter_state()
        b = GenARM.load(resumed, model=tiny_model(tokenizer)).adapter_state()
    else:
        a, b = final_weights(whole, tokenizer), final_weights(resumed, tokenizer)
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    rows = [read_jsonl(tmp_path / name / "metrics.jsonl") for name in ("whole", "killed")]
    losses = [[(r["step"], r["loss"]) for r in rs if r["kind"] == "train"] for rs in rows]
    assert losses[0] == losses[1]  # the log continues where it was, rows 5.. not repeated


@pytest.mark.parametrize("method", ["uniarm", "parm", "genarm"])
def test_checkpoints_round_trip_every_parameter(tmp_path, tokenizer, model_dir, pairs, method):
    trained = {}

    def keep_final_weights(trainer):
        if trainer.step == trainer.total:
            trained.update({k: v.detach().clone() for k, v in trainer.arm.adapter_state().items()})
            if method != "genarm":
                trained["objective_embeddings"] = trainer.arm.state.objective_embeddings.clone()

    config = tiny_config(model_dir, tmp_path / "run", method=method, max_steps=2)
    path = train(config, *pairs, on_step=keep_final_weights)
    if method == "genarm":
        loaded = GenARM.load(path, model=tiny_model(tokenizer)).adapter_state()
        assert any(v.abs().sum() > 0 for k, v in loaded.items() if "lora_B" in k)  # trained
        meta = json.loads((path / "genarm.json").read_text())
    else:
        arm = load_preference_arm(path, tokenizer)
        loaded = {**arm.adapter_state(), "objective_embeddings": arm.state.objective_embeddings}
        meta = json.loads((path / "arm.json").read_text())
        assert meta["descriptions"][0].startswith("The response should")
    assert set(loaded) == set(trained)
    assert all(torch.equal(loaded[k], trained[k]) for k in trained)
    assert meta["base_model"] == str(model_dir) and meta["objectives"] == list(OBJECTIVES)
    assert meta["training"]["lr"] == config.lr and meta["training"]["step"] == 2


def test_a_finished_run_is_reused_and_never_overwritten(tmp_path, tokenizer, model_dir, pairs):
    config = tiny_config(model_dir, tmp_path / "run", max_steps=2)
    path = train(config, *pairs)
    stamp = (path / "adapter.safetensors").stat().st_mtime_ns

    def fail(trainer):
        raise AssertionError("a finished run was trained again")

    assert train(config, *pairs, on_step=fail) == path  # same settings: reused at once
    assert (path / "adapter.safetensors").stat().st_mtime_ns == stamp
    changed = tiny_config(model_dir, tmp_path / "run", max_steps=2, lr=5e-3)
    with pytest.raises(UniarmError, match="other settings: lr: 0.01 -> 0.005"):
        train(changed, *pairs)
    with pytest.raises(UniarmError, match="other pairs"):
        train(config, planted_pairs(96, seed=7), pairs[1])
    steps = []
    train(changed, *pairs, overwrite=True, on_step=lambda trainer: steps.append(trainer.step))
    assert steps == [1, 2]
    assert json.loads((tmp_path / "run" / "run.json").read_text())["settings"]["lr"] == 5e-3


def test_target_modules_that_match_nothing_fail_before_any_work(tmp_path, model_dir, pairs):
    for method in ("uniarm", "genarm"):
        config = tiny_config(
            model_dir, tmp_path / method, method=method, target_modules=("query", "value")
        )
        with pytest.raises(UniarmError, match="no linear layer of the model matches"):
            train(config, *pairs)
        assert not (tmp_path / method).exists()  # nothing written


def test_a_folder_of_other_files_is_refused(tmp_path, model_dir, pairs):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    with pytest.raises(UniarmError, match="not empty and holds no training run"):
        train(tiny_config(model_dir, tmp_path / "run"), *pairs)
    with pytest.raises(UniarmError, match="not empty and holds no training run"):
        train(tiny_config(model_dir, tmp_path / "run"), *pairs, overwrite=True)
    assert (tmp_path / "run" / "notes.txt").read_text() == "mine"


def test_resuming_over_another_base_model_is_refused(tmp_path, tokenizer, pairs):
    model_dir = save_tiny_model(tmp_path / "model", tokenizer, seed=0)
    config = tiny_config(model_dir, tmp_path / "run", max_steps=4, save_interval=2)

    def kill(trainer):
        if trainer.step == 3:
            raise Killed

    with pytest.raises(Killed):
        train(config, *pairs, on_step=kill)
    save_tiny_model(model_dir, tokenizer, seed=1)  # same spec, other weights
    with pytest.raises(UniarmError, match="trained on another base model"):
        train(config, *pairs)
