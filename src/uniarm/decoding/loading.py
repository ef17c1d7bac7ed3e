"""Load the guides of a reward-model checkpoint folder, whatever method trained it.

The folder names its method in the field `method` of `arm.json` (or `genarm.json`, or
`config.json`):

- `uniarm`, `parm`: a `PreferenceARM` checkpoint (one ARM, MoSLoRA or PBLoRA adapters);
- `genarm`: one plain LoRA ARM per objective, described by `genarm.json`:

      {"method": "genarm", "objectives": ["helpful", "harmless"],
       "members": {"helpful": "helpful/", "harmless": "harmless/"},
       "base_model": "smollm2-135m-instruct"}

  Each member is a peft adapter folder. A checkpoint written by `GenARM.save` (it records the
  base model's fingerprint) is loaded by `GenARM.load`, which checks that fingerprint. Any
  other such folder (peft adapters trained elsewhere) is read here: a member's ARM base model
  is `base_model` when given, else the `base_model_name_or_path` of its
  `adapter_config.json`. Members over one base model share one copy of it, as named peft
  adapters switched before each forward.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path

from uniarm.decoding.guides import Guide, ObjectiveGuide, PreferenceGuide
from uniarm.errors import UniarmError

log = logging.getLogger(__name__)

GENARM_MANIFEST = "genarm.json"
METHODS = ("uniarm", "parm", "genarm")


def checkpoint_method(path: str | Path) -> str:
    """The `method` recorded in a checkpoint folder."""
    path = Path(path)
    if path.is_file():
        raise UniarmError(
            f"{path} is a file, not a reward model checkpoint folder",
            f"pass the folder that holds it: {path.parent}",
        )
    if not path.is_dir():
        raise UniarmError(f"reward model checkpoint not found: {path}", "pass an ARM folder")
    if (path / "run.json").is_file() and (path / "arm").is_dir():
        raise UniarmError(
            f"{path} is a training run folder, not the ARM itself",
            f"pass its trained ARM: {path / 'arm'}",
        )
    for name in ("arm.json", GENARM_MANIFEST, "config.json"):
        meta_path = path / name
        if not meta_path.is_file():
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as exc:
            raise UniarmError(f"{meta_path} is not valid JSON: {exc}") from exc
        if isinstance(meta, dict) and "method" in meta:
            return meta["method"]
    if (path / GENARM_MANIFEST).is_file():
        return "genarm"
    raise UniarmError(
        f"{path} names no method (no arm.json or genarm.json with a 'method' field)",
        "pass a folder written by `uniarm train`",
    )


def checkpoint_objectives(path: str | Path) -> tuple[str, ...] | None:
    """The objectives a checkpoint folder was trained on, in its preference order, read from
    its manifest (`arm.json` or `genarm.json`) without loading a model; None if it names none.
    """
    checkpoint_method(path)  # the folder's own refusals first (missing, a run folder, ...)
    for name in ("arm.json", GENARM_MANIFEST):
        meta_path = Path(path) / name
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except json.JSONDecodeError as exc:
                raise UniarmError(f"{meta_path} is not valid JSON: {exc}") from exc
            if isinstance(meta, dict) and isinstance(meta.get("objectives"), list):
                return tuple(meta["objectives"])
    return None


def load_guides(
    path: str | Path, device="cpu", merge: str = "auto", model=None, tokenizer=None
) -> list[Guide]:
    """The guides of a checkpoint: one for UniARM or PARM, one per objective for GenARM.

    Args:
        path: the checkpoint folder.
        device: where the ARM models go.
        merge: `auto` or `never`, see `PreferenceGuide`.
        model, tokenizer: an already loaded ARM base model to put the adapters on (its
            weights are changed in place, so never pass the decoding base model itself).
    """
    method = checkpoint_method(path)
    if method in ("uniarm", "parm"):
        return [load_preference_guide(path, device, merge, model, tokenizer)]
    if method == "genarm":
        return load_genarm(path, device, model, tokenizer)
    raise UniarmError(f"{path}: unknown method {method!r}", f"expected one of {METHODS}")


def load_preference_guide(path, device="cpu", merge="auto", model=None, tokenizer=None):
    from uniarm.adapters.arm import PreferenceARM, read_arm_config

    if model is None:
        from uniarm.models import load_model

        model, tokenizer = load_model(read_arm_config(path)["base_model"], device=device)
    arm = PreferenceARM.load(path, device=device, model=model, tokenizer=tokenizer)
    return PreferenceGuide(arm, tokenizer=tokenizer, merge=merge)


def load_genarm(path, device="cpu", model=None, tokenizer=None) -> list[ObjectiveGuide]:
    """GenARM's per-objective LoRA ARMs, in the order of the manifest's objectives."""
    from peft import PeftModel

    path = Path(path)
    manifest = _read_manifest(path)
    if "base_fingerprint" in manifest:
        from uniarm.adapters.lora import GenARM

        if model is None:
            from uniarm.models import load_model

            model, tokenizer = load_model(manifest["base_model"], device=device)
        return genarm_guides(GenARM.load(path, device, model=model, tokenizer=tokenizer))
    objectives = tuple(manifest["objectives"])
    loaded: dict[str, tuple] = {}  # base spec -> (peft model, tokenizer)
    guides = []
    for objective in objectives:
        folder = path / manifest["members"][objective]
        spec = "(given)" if model is not None else _member_base(manifest, folder)
        if spec not in loaded:
            arm_model, arm_tokenizer = model, tokenizer
            if arm_model is None:
                from uniarm.models import load_model

                arm_model, arm_tokenizer = load_model(spec, device=device)
            peft_model = PeftModel.from_pretrained(arm_model, folder, adapter_name=objective)
            loaded[spec] = (peft_model, arm_tokenizer)
        else:
            loaded[spec][0].load_adapter(folder, adapter_name=objective)
        peft_model, arm_tokenizer = loaded[spec]
        peft_model.to(device).eval()
        guides.append(
            ObjectiveGuide(peft_model, objectives, objective, arm_tokenizer, adapter_name=objective)
        )
    log.info("GenARM: %d members over %d base model(s)", len(guides), len(loaded))
    return guides


def genarm_guides(genarm, tokenizer=None) -> list[ObjectiveGuide]:
    """One guide per member of a `uniarm.adapters.lora.GenARM`, switched by `GenARM.use`."""
    tokenizer = tokenizer or getattr(genarm, "tokenizer", None)
    return [
        ObjectiveGuide(
            genarm.model,
            genarm.objectives,
            objective,
            tokenizer,
            activate=functools.partial(genarm.use, objective),
        )
        for objective in genarm.objectives
    ]


def _read_manifest(path: Path) -> dict:
    manifest_path = path / GENARM_MANIFEST
    if not manifest_path.is_file():
        raise UniarmError(f"{path} has no {GENARM_MANIFEST}", "pass a GenARM checkpoint folder")
    try:
        manifest = json.loads(manifest_path.read_text())
        objectives, members = list(manifest["objectives"]), dict(manifest["members"])
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise UniarmError(
            f"{manifest_path} is not a GenARM manifest ({exc})",
            'it needs "objectives": [...] and "members": {objective: folder}',
        ) from exc
    missing = [o for o in objectives if o not in members]
    extra = [o for o in members if o not in objectives]
    if missing or extra or not objectives:
        raise UniarmError(
            f"{manifest_path}: objectives {objectives} and members {sorted(members)} differ",
            "give exactly one member folder per objective",
        )
    for objective, folder in members.items():
        if not (path / folder / "adapter_config.json").is_file():
            raise UniarmError(
                f"GenARM member {objective!r}: {path / folder} is not a peft adapter folder",
                "each member must be written by peft's save_pretrained",
            )
    return manifest


def _member_base(manifest: dict, folder: Path) -> str:
    if manifest.get("base_model"):
        return str(manifest["base_model"])
    adapter = json.loads((folder / "adapter_config.json").read_text())
    spec = adapter.get("base_model_name_or_path")
    if not spec:
        raise UniarmError(
            f"{folder}: the adapter names no base model",
            f'add "base_model" to {GENARM_MANIFEST}',
        )
    return str(spec)
