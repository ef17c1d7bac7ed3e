"""`load_guides` on real checkpoint folders: a UniARM/PARM ARM and a GenARM of peft LoRA ARMs."""

import json

import pytest
import torch
from decoding_helpers import OBJECTIVES, PROMPTS, peaked_llama, prompt_ids, reference_greedy

from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.decoding import (
    DecodingConfig,
    GuidedDecoder,
    ObjectiveGuide,
    PreferenceGuide,
    checkpoint_method,
    load_guides,
)
from uniarm.errors import UniarmError
from uniarm.models import load_model


@pytest.fixture(scope="module")
def arm_base_dir(tmp_path_factory, tokenizer):
    """A tiny ARM base model saved as a Hugging Face folder."""
    folder = tmp_path_factory.mktemp("arm-base")
    peaked_llama(tokenizer, seed=4).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def base(tokenizer):
    return peaked_llama(tokenizer, seed=0)


def lora_member(base_dir, seed):
    """A peft LoRA ARM with random (nonzero) A and B over the saved base."""
    from peft import LoraConfig, get_peft_model

    model, _ = load_model(str(base_dir))
    torch.manual_seed(seed)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_" in name:
                param.normal_(std=0.5)
    return peft_model.eval()


@pytest.fixture(scope="module")
def genarm_dir(tmp_path_factory, arm_base_dir):
    folder = tmp_path_factory.mktemp("genarm")
    members = {}
    for seed, objective in enumerate(OBJECTIVES):
        lora_member(arm_base_dir, seed).save_pretrained(folder / objective)
        members[objective] = f"{objective}/"
    # a hand-assembled manifest: the base model comes from each adapter_config.json
    manifest = {"method": "genarm", "objectives": list(OBJECTIVES), "members": members}
    (folder / "genarm.json").write_text(json.dumps(manifest))
    return folder


def test_genarm_folder_loads_one_guide_per_objective(genarm_dir, arm_base_dir, base, tokenizer):
    assert checkpoint_method(genarm_dir) == "genarm"
    guides = load_guides(genarm_dir)
    assert [g.objective for g in guides] == list(OBJECTIVES)
    assert all(isinstance(g, ObjectiveGuide) for g in guides)
    assert guides[0].model is guides[1].model  # one copy of the ARM base, two adapters

    cfg = DecodingConfig(max_new_tokens=6)
    got = GuidedDecoder(base, tokenizer, guides, cfg).generate(PROMPTS[:2], [0.3, 0.7])

    # independent route: each member loaded over its own fresh copy, full recomputation
    from peft import PeftModel

    members = []
    for objective in OBJECTIVES:
        copy, _ = load_model(str(arm_base_dir))
        members.append(PeftModel.from_pretrained(copy, genarm_dir / objective).eval())
    refs = [lambda x, m=m: m(input_ids=x).logits for m in members]
    for row in range(2):
        ids = prompt_ids(tokenizer, PROMPTS[row])
        expected, _ = reference_greedy(base, refs, [0.3, 0.7], ids, 6)
        assert got[row].token_ids == expected
    # the LoRA weights matter: the first member alone decodes differently from its base
    plain, _ = load_model(str(arm_base_dir))
    ids = prompt_ids(tokenizer, PROMPTS[0])
    unadapted, _ = reference_greedy(base, [lambda x: plain(input_ids=x).logits], [1.0], ids, 6)
    adapted, _ = reference_greedy(base, refs[:1], [1.0], ids, 6)
    assert unadapted != adapted


def test_genarm_checkpoint_written_by_the_trainer(tmp_path, arm_base_dir, base, tokenizer):
    from uniarm.adapters.lora import GenARM, LoRASettings

    model, _ = load_model(str(arm_base_dir))
    genarm = GenARM.build(model, OBJECTIVES, LoRASettings(rank=4), base_model=str(arm_base_dir))
    torch.manual_seed(0)
    with torch.no_grad():
        for param in genarm.trainable_parameters():
            param.normal_(std=0.5)
    genarm.eval().save(tmp_path / "genarm")

    guides = load_guides(tmp_path / "genarm")
    assert [g.objective for g in guides] == list(OBJECTIVES)
    got = GuidedDecoder(base, tokenizer, guides, DecodingConfig(max_new_tokens=6)).generate(
        PROMPTS[:1], [0.6, 0.4]
    )[0]

    def member(objective):
        return lambda x: genarm(input_ids=x, objective=objective).logits

    ids = prompt_ids(tokenizer, PROMPTS[0])
    expected, _ = reference_greedy(base, [member(o) for o in OBJECTIVES], [0.6, 0.4], ids, 6)
    assert got.token_ids == expected


@pytest.mark.parametrize("adapter", ["moslora", "pblora"])
def test_preference_arm_checkpoint(tmp_path, arm_base_dir, base, tokenizer, adapter):
    model, arm_tokenizer = load_model(str(arm_base_dir))
    arm = PreferenceARM(model, arm_tokenizer, OBJECTIVES, AdapterConfig(adapter=adapter))
    with torch.no_grad():
        for param in arm.trainable_parameters():
            param.normal_(std=0.5)
    arm.save(tmp_path / "arm")
    assert checkpoint_method(tmp_path / "arm") == ("uniarm" if adapter == "moslora" else "parm")

    (guide,) = load_guides(tmp_path / "arm")
    assert isinstance(guide, PreferenceGuide) and guide.tokenizer is not None
    cfg = DecodingConfig(max_new_tokens=6)
    prefs = [[0.2, 0.8], [0.9, 0.1]]
    loaded = GuidedDecoder(base, tokenizer, [guide], cfg).generate(PROMPTS[:2], prefs)
    in_memory = GuidedDecoder(base, tokenizer, [PreferenceGuide(arm)], cfg).generate(
        PROMPTS[:2], prefs
    )
    assert [g.token_ids for g in loaded] == [g.token_ids for g in in_memory]


def test_bad_checkpoints(tmp_path, genarm_dir):
    with pytest.raises(UniarmError, match="not found"):
        load_guides(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UniarmError, match="names no method"):
        load_guides(tmp_path / "empty")
    odd = tmp_path / "odd"
    odd.mkdir()
    (odd / "arm.json").write_text(json.dumps({"method": "mystery"}))
    with pytest.raises(UniarmError, match="unknown method"):
        load_guides(odd)

    manifest = json.loads((genarm_dir / "genarm.json").read_text())
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "genarm.json").write_text(json.dumps({**manifest, "objectives": ["helpful"]}))
    with pytest.raises(UniarmError, match="differ"):
        load_guides(broken)
    (broken / "genarm.json").write_text(json.dumps(manifest))  # members' folders are missing
    with pytest.raises(UniarmError, match="not a peft adapter folder"):
        load_guides(broken)
