"""GenARM's per-objective LoRA ARMs (uniarm.adapters.lora): build, switch, save, load."""

import json

import pytest
import torch

from conftest import make_tiny_llama
from uniarm.adapters.lora import GenARM, LoRASettings, read_genarm_config
from uniarm.errors import UniarmError

OBJECTIVES = ("helpful", "harmless")


def build(tokenizer, seed=0, randomise=True):
    model = make_tiny_llama(tokenizer, seed=seed)
    arm = GenARM.build(model, OBJECTIVES, LoRASettings(), base_model=f"tiny-{seed}")
    if randomise:
        torch.manual_seed(7)
        with torch.no_grad():
            for p in arm.trainable_parameters():
                p.normal_(std=0.3)
    return arm


def ids(tokenizer):
    return tokenizer("Hello there, how are you?", return_tensors="pt")["input_ids"]


def test_fresh_members_are_the_base_model(tokenizer):
    base = make_tiny_llama(tokenizer, seed=0)
    arm = build(tokenizer, randomise=False)
    x = ids(tokenizer)
    with torch.no_grad():
        for objective in OBJECTIVES:
            assert torch.equal(
                arm(objective=objective, input_ids=x).logits, base(input_ids=x).logits
            )
    # rank 8 on q (32x32), k, v (32x16) in 2 layers: r(m + n) each
    assert arm.num_trainable() == 2 * 2 * 8 * ((32 + 32) + 2 * (32 + 16))


def test_members_are_independent(tokenizer):
    arm = build(tokenizer)
    x = ids(tokenizer)
    with torch.no_grad():
        helpful = arm(objective="helpful", input_ids=x).logits
        harmless = arm(objective="harmless", input_ids=x).logits
    assert not torch.allclose(helpful, harmless)
    arm.train()
    arm(objective="harmless", input_ids=x).logits.sum().backward()
    assert all(p.grad is None for p in arm.trainable_parameters("helpful"))
    assert all(p.grad is not None for p in arm.trainable_parameters("harmless"))


def test_save_load_round_trip_keeps_every_parameter(tmp_path, tokenizer):
    arm = build(tokenizer)
    arm.save(tmp_path / "g", training={"seed": 3})
    meta = read_genarm_config(tmp_path / "g")
    assert meta["format"] == "uniarm-genarm/1" and meta["members"] == {o: o for o in OBJECTIVES}
    assert meta["lora"] == {
        "rank": 8,
        "alpha": 16.0,
        "dropout": 0.0,
        "target_modules": ["q_proj", "k_proj", "v_proj"],
    }
    loaded = GenARM.load(tmp_path / "g", model=make_tiny_llama(tokenizer, seed=0))
    a, b = arm.adapter_state(), loaded.adapter_state()
    assert set(a) == set(b) and all(torch.equal(a[k], b[k]) for k in a)
    assert loaded.training_config == {"seed": 3} and not loaded.training
    x = ids(tokenizer)
    with torch.no_grad():
        for objective in OBJECTIVES:
            assert torch.equal(
                loaded(objective=objective, input_ids=x).logits,
                arm(objective=objective, input_ids=x).logits,
            )


def test_a_member_folder_is_a_plain_peft_adapter(tmp_path, tokenizer):
    from peft import PeftModel

    arm = build(tokenizer)
    arm.save(tmp_path / "g")
    alone = PeftModel.from_pretrained(
        make_tiny_llama(tokenizer, seed=0), tmp_path / "g" / "harmless"
    )
    x = ids(tokenizer)
    with torch.no_grad():
        assert torch.equal(alone(input_ids=x).logits, arm(objective="harmless", input_ids=x).logits)


def test_loading_one_member_and_an_unknown_one(tmp_path, tokenizer):
    build(tokenizer).save(tmp_path / "g")
    one = GenARM.load(tmp_path / "g", model=make_tiny_llama(tokenizer), objectives=["harmless"])
    assert one.objectives == ("harmless",)
    with pytest.raises(UniarmError, match=r"objective\(s\) \['humor'\] unknown to the checkpoint"):
        GenARM.load(tmp_path / "g", model=make_tiny_llama(tokenizer), objectives=["humor"])
    with pytest.raises(UniarmError, match="unknown to the checkpoint"):
        one.use("helpful")


def test_checkpoint_from_another_base_model_is_refused(tmp_path, tokenizer):
    build(tokenizer).save(tmp_path / "g")
    with pytest.raises(UniarmError, match="trained on another base model"):
        GenARM.load(tmp_path / "g", model=make_tiny_llama(tokenizer, seed=1))


def test_target_modules_that_match_nothing(tokenizer):
    with pytest.raises(UniarmError, match="no linear layer of the model matches"):
        GenARM.build(make_tiny_llama(tokenizer), OBJECTIVES, LoRASettings(target_modules=("qkv",)))


def test_broken_checkpoints_are_named(tmp_path, tokenizer):
    with pytest.raises(UniarmError, match="is not a GenARM checkpoint"):
        GenARM.load(tmp_path)
    build(tokenizer).save(tmp_path / "g")
    (tmp_path / "g" / "harmless" / "adapter_model.safetensors").unlink()
    with pytest.raises(UniarmError, match="'harmless'.*is not a peft adapter folder"):
        read_genarm_config(tmp_path / "g")
    meta = json.loads((tmp_path / "g" / "genarm.json").read_text())
    (tmp_path / "g" / "genarm.json").write_text(json.dumps({**meta, "format": "other/9"}))
    with pytest.raises(UniarmError, match="has format"):
        read_genarm_config(tmp_path / "g")


def test_bad_lora_settings():
    with pytest.raises(UniarmError, match="rank must be >= 1"):
        LoRASettings(rank=0)
    with pytest.raises(UniarmError, match="dropout"):
        LoRASettings(dropout=1.5)
