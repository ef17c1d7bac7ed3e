"""The ARM wrapper over a tiny real Llama: injection, conditioning, merging, checkpoints."""

import pytest
import torch

from conftest import make_tiny_llama
from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.adapters.embeddings import objective_embeddings
from uniarm.errors import UniarmError

OBJECTIVES = ("helpful", "harmless")


def build_arm(tokenizer, adapter="moslora", seed=0, randomise=True, **kw):
    model = make_tiny_llama(tokenizer, seed=seed)
    model.name_or_spec = f"tiny-{seed}"
    arm = PreferenceARM(model, tokenizer, OBJECTIVES, AdapterConfig(adapter=adapter, **kw))
    if randomise:
        torch.manual_seed(seed + 100)
        with torch.no_grad():
            for p in arm.trainable_parameters():
                p.normal_(std=0.3)
    return arm


def ids(tokenizer, text="Hello there, how are you?"):
    return tokenizer(text, return_tensors="pt")["input_ids"]


@pytest.mark.parametrize("adapter", ["moslora", "pblora"])
def test_fresh_arm_gives_the_base_models_logits(tokenizer, adapter):
    base = make_tiny_llama(tokenizer, seed=0)
    arm = build_arm(tokenizer, adapter, randomise=False)
    x = ids(tokenizer)
    expected = base(input_ids=x).logits
    got = arm(input_ids=x, preference=[0.5, 0.5]).logits
    assert torch.equal(got, expected)
    assert len(arm.layers) == 3 * 2  # q, k, v in each of 2 layers


def test_objective_embeddings_are_mean_input_embeddings(tokenizer, tiny_llama):
    text = "The response should be cheerful and amusing."
    token_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    table = tiny_llama.get_input_embeddings().weight
    expected = sum(table[i] for i in token_ids) / len(token_ids)
    torch.testing.assert_close(objective_embeddings(tiny_llama, tokenizer, [text])[0], expected)


@pytest.mark.parametrize("adapter", ["moslora", "pblora"])
def test_merged_arm_equals_unmerged(tokenizer, adapter):
    arm = build_arm(tokenizer, adapter)
    x = ids(tokenizer)
    with torch.no_grad():
        unmerged = arm(input_ids=x, preference=[0.3, 0.7]).logits
        arm.merge([0.3, 0.7])
        merged = arm.model(input_ids=x).logits
        arm.unmerge()
        again = arm(input_ids=x, preference=[0.3, 0.7]).logits
    torch.testing.assert_close(merged, unmerged, rtol=1e-4, atol=1e-4)
    assert torch.equal(again, unmerged)


@pytest.mark.parametrize("adapter", ["moslora", "pblora"])
def test_a_guides_merge_is_undone_by_direct_use_and_a_callers_merge_is_refused(
    tmp_path, tokenizer, adapter
):
    arm = build_arm(tokenizer, adapter)
    before = {k: v.clone() for k, v in arm.model.state_dict().items()}
    x = ids(tokenizer)
    with torch.no_grad():
        expected = arm(input_ids=x, preference=[0.2, 0.8]).logits

        arm.merge([0.3, 0.7], by_guide=True)  # a decoder's cache
        assert arm.merged_by_guide
        got = arm(input_ids=x, preference=[0.2, 0.8]).logits
    assert arm.merged is None and not arm.merged_by_guide
    assert torch.equal(got, expected)
    after = arm.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())

    arm.merge([0.3, 0.7], by_guide=True)
    arm.set_preference([0.2, 0.8])
    assert arm.merged is None
    arm.merge([0.3, 0.7], by_guide=True)
    arm.save(tmp_path / "arm")
    assert arm.merged is None

    arm.merge([0.3, 0.7])  # the caller's own: refused wherever it would be ignored
    arm.release_guide_merge()
    assert arm.merged == (0.3, 0.7)
    for use in (
        lambda: arm.set_preference([0.2, 0.8]),
        lambda: arm(input_ids=x, preference=[0.2, 0.8]),
        lambda: arm.save(tmp_path / "again"),
    ):
        with pytest.raises(UniarmError, match="merged for the preference"):
            use()
    assert arm.merged == (0.3, 0.7) and not (tmp_path / "again").exists()


@pytest.mark.parametrize("adapter", ["moslora", "pblora"])
def test_per_row_preferences_in_one_batch(tokenizer, adapter):
    arm = build_arm(tokenizer, adapter)
    x = ids(tokenizer).repeat(3, 1)
    prefs = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.1, 0.9]])
    with torch.no_grad():
        together = arm(input_ids=x, preference=prefs).logits
        for i in range(3):
            alone = arm(input_ids=x[:1], preference=prefs[i]).logits
            torch.testing.assert_close(together[i : i + 1], alone, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(together[0], together[2])


@pytest.mark.parametrize("adapter", ["moslora", "pblora"])
def test_save_load_round_trip_keeps_every_parameter(tmp_path, tokenizer, adapter):
    arm = build_arm(tokenizer, adapter)
    arm.save(tmp_path / "arm", training={"seed": 3})
    model = make_tiny_llama(tokenizer, seed=0)
    loaded = PreferenceARM.load(tmp_path / "arm", model=model, tokenizer=tokenizer)
    original = arm.adapter_state()
    for name, value in loaded.adapter_state().items():
        assert torch.equal(value, original[name]), name
    assert torch.equal(loaded.state.objective_embeddings, arm.state.objective_embeddings)
    assert loaded.training_config == {"seed": 3} and loaded.method == arm.method
    x = ids(tokenizer)
    with torch.no_grad():
        assert torch.equal(
            loaded(input_ids=x, preference=[0.2, 0.8]).logits,
            arm(input_ids=x, preference=[0.2, 0.8]).logits,
        )


def test_checkpoint_from_another_base_model_is_refused(tmp_path, tokenizer):
    build_arm(tokenizer).save(tmp_path / "arm")
    other = make_tiny_llama(tokenizer, seed=1)
    with pytest.raises(UniarmError, match="trained on another base model"):
        PreferenceARM.load(tmp_path / "arm", model=other, tokenizer=tokenizer)


def test_not_a_checkpoint(tmp_path):
    with pytest.raises(UniarmError, match="is not an ARM checkpoint"):
        PreferenceARM.load(tmp_path)


def test_target_modules_that_match_nothing(tokenizer, tiny_llama):
    with pytest.raises(UniarmError, match="no linear layer of the model matches"):
        PreferenceARM(
            tiny_llama, tokenizer, OBJECTIVES, AdapterConfig(target_modules=("query", "value"))
        )


@pytest.mark.parametrize(
    "bad,message",
    [
        ([0.5, -0.5], "negative"),
        ([0.2, 0.2], "sum"),
        ([0.5, 0.25, 0.25], "do not fit"),
        ([float("nan"), 1.0], "NaN"),
    ],
)
def test_bad_preferences_fail_before_any_work(tokenizer, bad, message):
    arm = build_arm(tokenizer, randomise=False)
    with pytest.raises(UniarmError, match=message):
        arm.set_preference(bad)
    with pytest.raises(UniarmError):
        arm.merge(bad)


def test_forward_without_preference_is_an_error(tokenizer):
    arm = build_arm(tokenizer, randomise=False)
    with pytest.raises(UniarmError, match="without a preference"):
        arm(input_ids=ids(tokenizer))


def test_only_adapter_parameters_train(tokenizer):
    arm = build_arm(tokenizer, randomise=False)
    trainable = {id(p) for p in arm.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in arm.trainable_parameters()}


def test_centered_objective_embeddings(tokenizer):
    arm = build_arm(tokenizer, randomise=False)
    mean = arm.state.objective_embeddings
    centered = build_arm(tokenizer, randomise=False, objective_embedding="centered")
    e = centered.state.objective_embeddings
    expected = (mean - mean.mean(0)) / (mean - mean.mean(0)).pow(2).mean(1, keepdim=True).sqrt()
    torch.testing.assert_close(e, expected)
    torch.testing.assert_close(e.pow(2).mean(1), torch.ones(2))
    torch.testing.assert_close(e[0], -e[1])  # two objectives: opposite directions
    assert e.shape == mean.shape
