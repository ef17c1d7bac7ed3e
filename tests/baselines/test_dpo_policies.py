"""DPO policies through trl: the same pairs and caps as the ARMs, resumable, reusable, loadable."""

import json
import random

import pytest
import torch

from conftest import make_tiny_llama
from uniarm.baselines import dpo
from uniarm.baselines.dpo import DPOSettings, load_policies, read_policies, train_policies
from uniarm.data.schema import PreferencePair, Turn
from uniarm.errors import UniarmError
from uniarm.training import TrainConfig
from uniarm.training.batching import encode_prompt, encode_response

OBJECTIVES = ("helpful", "harmless")
WORDS = ["the", "cat", "sat", "on", "a", "mat", "and", "then", "ran", "home", "fast", "blue"]


def planted_pairs(n, seed=0):
    """Objective helpful prefers the reply with " apple", harmless the one with " river"."""
    rng = random.Random(seed)
    pairs = []
    for i in range(n):
        filler = " ".join(rng.choice(WORDS) for _ in range(5))
        a, b = f"{filler} apple", f"{filler} river"
        first = rng.random() < 0.5
        pairs.append(
            PreferencePair(
                conversation=(Turn("user", f"Say something #{i}"),),
                responses=(a, b) if first else (b, a),
                winners={"helpful": 0 if first else 1, "harmless": 1 if first else 0},
                source="planted",
            )
        )
    return pairs


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tokenizer):
    folder = tmp_path_factory.mktemp("tiny") / "model"
    make_tiny_llama(tokenizer, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def settings(model_dir, **overrides):
    values = dict(
        method="genarm",
        task="safety",
        base_model=str(model_dir),
        num_pairs=0,
        eval_pairs=0,
        max_prompt_tokens=24,
        max_response_tokens=8,
        batch_size=4,
        grad_accumulation=1,
        lr=2e-2,
        max_steps=3,
        warmup_ratio=0.0,
        save_interval=1,
        seed=0,
        num_threads=1,
    )
    values.update(overrides)
    return TrainConfig(**values)


def test_rows_are_cut_like_the_arm_pairs(tokenizer, model_dir):
    pair = PreferencePair(
        conversation=(Turn("user", "word " * 40),),
        responses=("one two three four five six seven eight nine ten", "short"),
        winners={"helpful": 1, "harmless": 0},
    )
    config = settings(model_dir)
    (row,) = dpo.dpo_rows(tokenizer, [pair], "helpful", config)
    ids = lambda text: tokenizer(text, add_special_tokens=False)["input_ids"]  # noqa: E731
    assert ids(row["prompt"]) == encode_prompt(tokenizer, pair.conversation, 24)
    assert row["chosen"] == "short"
    # trl appends EOS to every response, so a cut one keeps 7 tokens and ends in EOS: the ARM's
    # encoding cuts to 8 tokens with no EOS, and both agree on the first 7.
    cut = ids(row["rejected"]) + [tokenizer.eos_token_id]
    assert len(cut) == 8 and cut[:7] == encode_response(tokenizer, pair.responses[0], 8)[:7]


def test_train_load_and_reuse(tmp_path, tokenizer, model_dir, monkeypatch):
    folder = tmp_path / "policies"
    pairs = planted_pairs(12)
    path = train_policies(settings(model_dir), DPOSettings(), folder, train_pairs=pairs, quiet=True)
    meta = read_policies(path)
    assert meta["objectives"] == list(OBJECTIVES)
    # per policy and layer: r (in + out) for q (32 -> 32), k and v (32 -> 16); 2 layers
    per_policy = 2 * 8 * ((32 + 32) + 2 * (32 + 16))
    assert meta["trainable_parameters"] == 2 * per_policy
    for objective in OBJECTIVES:
        record = meta["training"]["members"][objective]
        assert record["steps"] == 3 and record["trainable_parameters"] == per_policy
        assert not list((folder / "runs" / objective).glob("checkpoint-*"))

    model, _, _ = load_policies(path)
    assert set(model.peft_config) == set(OBJECTIVES)
    b = {
        o: model.base_model.model.model.layers[0].self_attn.q_proj.lora_B[o].weight
        for o in OBJECTIVES
    }
    assert all(w.abs().sum() > 0 for w in b.values())  # trained: B left its zero init
    assert not torch.equal(b["helpful"], b["harmless"])

    # a second call reuses both members: nothing is trained again
    monkeypatch.setattr(dpo, "build_trainer", lambda *a, **k: pytest.fail("trained again"))
    assert train_policies(settings(model_dir), DPOSettings(), folder, train_pairs=pairs) == path

    with pytest.raises(UniarmError, match="other settings"):
        train_policies(settings(model_dir, lr=1e-3), DPOSettings(), folder, train_pairs=pairs)


@pytest.mark.slow
def test_the_policy_learns_its_objectives_label(tmp_path, tokenizer, model_dir):
    pairs = planted_pairs(16)
    config = settings(model_dir, max_steps=8, save_interval=0, lr=5e-2)
    path = train_policies(config, DPOSettings(beta=0.5), tmp_path / "p", train_pairs=pairs)
    meta = read_policies(path)
    for objective in OBJECTIVES:
        final = meta["training"]["members"][objective]["final"]
        assert final["rewards/margins"] > 0, final


@pytest.mark.slow
def test_an_interrupted_member_resumes_to_the_uninterrupted_result(
    tmp_path, tokenizer, model_dir, monkeypatch
):
    from transformers import TrainerCallback

    pairs = planted_pairs(12)
    whole = train_policies(
        settings(model_dir), DPOSettings(), tmp_path / "whole", train_pairs=pairs
    )

    real_build = dpo.build_trainer

    class Stop(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step == 2:  # checkpoint-1 is on disk, step 2's is not
                raise KeyboardInterrupt

    def interrupted(*args, **kwargs):
        trainer = real_build(*args, **kwargs)
        trainer.add_callback(Stop())
        return trainer

    monkeypatch.setattr(dpo, "build_trainer", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train_policies(settings(model_dir), DPOSettings(), tmp_path / "cut", train_pairs=pairs)
    run = json.loads((tmp_path / "cut" / "runs" / "helpful" / "run.json").read_text())
    assert run["status"] == "running"
    monkeypatch.setattr(dpo, "build_trainer", real_build)
    cut = train_policies(settings(model_dir), DPOSettings(), tmp_path / "cut", train_pairs=pairs)

    record = read_policies(cut)["training"]["members"]["helpful"]
    assert record["resumed_from"] == "checkpoint-1"
    from safetensors.torch import load_file

    for objective in OBJECTIVES:
        a = load_file(whole / objective / "adapter_model.safetensors")
        b = load_file(cut / objective / "adapter_model.safetensors")
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-6)


def test_a_folder_that_is_not_a_policies_folder_is_refused_clearly(tmp_path):
    with pytest.raises(UniarmError, match="is not a DPO policies folder") as err:
        read_policies(tmp_path)
    assert "train_policies" in err.value.fix

    manifest = {
        "format": dpo.POLICIES_FORMAT,
        "objectives": ["helpful", "harmless"],
        "members": {"helpful": "helpful", "harmless": "harmless"},
    }
    (tmp_path / dpo.POLICIES_MANIFEST).write_text(json.dumps(manifest))
    (tmp_path / "helpful").mkdir()
    (tmp_path / "helpful" / "adapter_config.json").write_text("{}")
    (tmp_path / "helpful" / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(UniarmError, match="'harmless'.*is not a peft adapter folder"):
        read_policies(tmp_path)

    (tmp_path / dpo.POLICIES_MANIFEST).write_text(json.dumps(manifest | {"format": "other/1"}))
    with pytest.raises(UniarmError, match="has format 'other/1'"):
        read_policies(tmp_path)
