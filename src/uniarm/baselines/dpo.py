"""One DPO-tuned LoRA policy per objective: the shared training of MOD and Rewarded Soups.

MOD and Rewarded Soups (paper §5.1 and Appendix C.1) fine-tune the base model once per
objective with DPO, LoRA rank 8 and alpha 16 on q/k/v, the hyperparameters of GenARM. Here each
policy is a peft LoRA adapter over the frozen base model, trained by trl's `DPOTrainer` on the
same training pairs as the ARMs (chosen and rejected by that objective's label). The reference
model is the base itself (peft turns the adapter off for the reference forward).

    policies = train_policies(TrainConfig(task="safety", ...), DPOSettings(), "runs/dpo")
    model, tokenizer, meta = load_policies(policies)   # one peft model, one adapter each

Folder layout:

    <folder>/policies.json      base model and its fingerprint, objectives, LoRA shapes, DPO
                                settings, per-member training record
    <folder>/<objective>/       the finished peft adapter (adapter_config.json + safetensors)
    <folder>/runs/<objective>/  trl's run while it trains: run.json and checkpoint-N folders

Each member trains, resumes from its last trl checkpoint, or is reused once finished. A member
folder that holds a run of other settings or other pairs is refused unless `overwrite`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from uniarm import config as cfg
from uniarm.adapters.arm import base_fingerprint
from uniarm.adapters.lora import LoRASettings, read_member_manifest
from uniarm.config import field
from uniarm.data.schema import PreferencePair
from uniarm.errors import UniarmError
from uniarm.io import atomic_dir, write_json
from uniarm.training.config import TrainConfig

log = logging.getLogger(__name__)

POLICIES_FORMAT = "uniarm-dpo-policies/1"
POLICIES_MANIFEST = "policies.json"
RUN_FORMAT = "uniarm-dpo-run/1"


@dataclass
class DPOSettings:
    """What the DPO tuning adds to the shared training settings (a `TrainConfig`).

    Parameters:
        beta: DPO's β, the weight of the implicit KL penalty to the base model.
        lora_rank: rank r of each policy's LoRA (paper: 8, as GenARM).
        lora_alpha: LoRA alpha; the update is scaled by alpha / r (paper: 16).
    """

    beta: float = field(0.1, help="DPO beta (KL weight to the base model)")
    lora_rank: int = field(8, help="LoRA rank of each per-objective policy")
    lora_alpha: float = field(16.0, help="LoRA alpha of each policy")

    def __post_init__(self):
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise UniarmError(f"DPO beta must be a positive number, got {self.beta}")
        if self.lora_rank < 1:
            raise UniarmError(f"lora_rank must be >= 1, got {self.lora_rank}")


def pairs_fingerprint(pairs: Sequence[PreferencePair]) -> str:
    """A short hash of the training pairs (conversations, responses, labels, in order)."""
    digest = hashlib.sha256()
    for pair in pairs:
        record = [pair.prompt_id, list(pair.responses), sorted(pair.winners.items())]
        digest.update(json.dumps(record).encode())
    return digest.hexdigest()[:16]


def dpo_rows(tokenizer, pairs: Sequence[PreferencePair], objective: str, config: TrainConfig):
    """trl's prompt / chosen / rejected texts, cut to the ARMs' token caps.

    The prompt is the chat-templated conversation cut from the left to `max_prompt_tokens`,
    as the ARMs' prompts are, and each response is cut from the right to
    `max_response_tokens - 1` tokens, since trl appends EOS to every response; trl tokenizes
    the texts again.

    # NOTE: unlike the ARMs' encoding, a cut response thus still ends in an EOS label here.
    """
    from uniarm.training.batching import encode_prompt

    rows = []
    for pair in pairs:
        prompt = encode_prompt(tokenizer, pair.conversation, config.max_prompt_tokens)
        chosen, rejected = (
            tokenizer(text, add_special_tokens=False)["input_ids"][: config.max_response_tokens - 1]
            for text in pair.chosen_rejected(objective)
        )
        rows.append(
            {
                "prompt": tokenizer.decode(prompt),
                "chosen": tokenizer.decode(chosen),
                "rejected": tokenizer.decode(rejected),
            }
        )
    return rows


def total_steps(num_pairs: int, config: TrainConfig) -> int:
    """Optimizer steps of a member, counted as the ARMs count theirs (same pairs per step)."""
    if config.max_steps:
        return config.max_steps
    per_step = config.batch_size * config.grad_accumulation
    return max(1, math.ceil(config.epochs * num_pairs / per_step))


def member_settings(config: TrainConfig, settings: DPOSettings, objective: str) -> dict:
    """The settings that decide what one member computes (compared when it resumes)."""
    keep = (
        "task",
        "base_model",
        "split_seed",
        "num_pairs",
        "max_prompt_tokens",
        "max_response_tokens",
        "batch_size",
        "grad_accumulation",
        "lr",
        "weight_decay",
        "max_grad_norm",
        "epochs",
        "max_steps",
        "warmup_ratio",
        "seed",
        "target_modules",
        "mixed_precision",
    )
    shared = {k: v for k, v in cfg.to_dict(config).items() if k in keep}
    values = {**shared, "objective": objective, "dpo": cfg.to_dict(settings)}
    return json.loads(json.dumps(values))  # tuples become lists, as in the saved JSON


@contextlib.contextmanager
def _threads(count: int | None):
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_policies(
    config: TrainConfig,
    settings: DPOSettings,
    folder: str | Path,
    train_pairs: Sequence[PreferencePair] | None = None,
    overwrite: bool = False,
    quiet: bool = False,
) -> Path:
    """Train (or resume, or reuse) one DPO policy per objective; return the policies folder.

    Args:
        config: the shared settings (task, base model, pairs, optimizer, seed); its method and
            adapter fields are not used: each policy is a LoRA of `settings`' shape.
        settings: DPO's β and the LoRA shapes.
        folder: the policies folder (see the module docstring).
        train_pairs: pairs to use instead of the task's train split (limited by num_pairs).
        overwrite: start a member again whose folder holds a run of other settings.
        quiet: no progress output from trl and datasets.
    """
    from uniarm.data.splits import take
    from uniarm.data.tasks import task_pairs
    from uniarm.models import load_tokenizer

    folder = Path(folder)
    if train_pairs is None:
        pairs = task_pairs(
            config.task,
            config.data_root,
            split="train",
            seed=config.split_seed,
            limit=config.num_pairs or None,
        )
    else:
        pairs = take(train_pairs, config.num_pairs or None, config.split_seed)
    if not pairs:
        raise UniarmError("no training pairs for the DPO policies", "check the task and data")
    tokenizer = load_tokenizer(config.base_model)
    fingerprint = pairs_fingerprint(pairs)

    records = {}
    with _threads(config.num_threads):
        for objective in config.task_objectives:
            records[objective] = train_member(
                config, settings, folder, objective, pairs, tokenizer, fingerprint, overwrite, quiet
            )
    write_manifest(folder, config, settings, records, fingerprint, len(pairs))
    return folder


def train_member(
    config, settings, folder, objective, pairs, tokenizer, fingerprint, overwrite, quiet
) -> dict:
    """One objective's DPO run: reuse it when finished, resume it from trl's last checkpoint."""
    from transformers.trainer_utils import get_last_checkpoint

    run_dir = folder / "runs" / objective
    run_file = run_dir / "run.json"
    wanted = member_settings(config, settings, objective)
    found = json.loads(run_file.read_text()) if run_file.is_file() else None
    if found is not None and (found.get("settings"), found.get("data")) != (wanted, fingerprint):
        if not overwrite:
            raise UniarmError(
                f"{run_dir} holds a DPO run of other settings or other pairs",
                "use the same settings to resume, another folder, or overwrite",
            )
        shutil.rmtree(run_dir)
        found = None
    if found is not None and found.get("status") == "finished" and (folder / objective).is_dir():
        log.info("DPO policy %s: reusing the finished run in %s", objective, run_dir)
        return found["record"]

    run_dir.mkdir(parents=True, exist_ok=True)
    resume = get_last_checkpoint(str(run_dir)) if found is not None else None
    write_json(
        run_file,
        {"format": RUN_FORMAT, "status": "running", "settings": wanted, "data": fingerprint},
    )
    start = time.perf_counter()
    trainer = build_trainer(config, settings, run_dir, objective, pairs, tokenizer, quiet)
    steps = trainer.args.max_steps
    log.info(
        "DPO policy %s: %d pairs, %d steps of %d pairs%s",
        objective,
        len(pairs),
        steps,
        config.batch_size * config.grad_accumulation,
        f", resuming from {Path(resume).name}" if resume else "",
    )
    trainer.train(resume_from_checkpoint=resume)

    with atomic_dir(folder / objective) as staging:
        trainer.model.save_pretrained(staging)
    history = [row for row in trainer.state.log_history if "loss" in row]
    record = {
        "steps": steps,
        "seconds": time.perf_counter() - start,
        "resumed_from": Path(resume).name if resume else None,
        "trainable_parameters": sum(
            p.numel() for p in trainer.model.parameters() if p.requires_grad
        ),
        "final": history[-1] if history else {},
    }
    write_json(
        run_file,
        {
            "format": RUN_FORMAT,
            "status": "finished",
            "settings": wanted,
            "data": fingerprint,
            "record": record,
            "log_history": history,
        },
    )
    for checkpoint in run_dir.glob("checkpoint-*"):
        shutil.rmtree(checkpoint, ignore_errors=True)
    return record


def build_trainer(config, settings, run_dir, objective, pairs, tokenizer, quiet):
    """trl's DPOTrainer for one objective, with a fresh copy of the base model."""
    from datasets import Dataset
    from datasets.utils.logging import disable_progress_bar
    from transformers import PrinterCallback, ProgressCallback
    from trl import DPOConfig, DPOTrainer

    from uniarm.models import load_model

    if quiet:
        disable_progress_bar()
    model, _ = load_model(config.base_model)
    lora = LoRASettings(
        rank=settings.lora_rank, alpha=settings.lora_alpha, target_modules=config.target_modules
    )
    steps = total_steps(len(pairs), config)
    args = DPOConfig(
        output_dir=str(run_dir),
        beta=settings.beta,
        learning_rate=config.lr,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,  # 0: no clipping, as for the ARMs
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accumulation,
        max_steps=steps,
        lr_scheduler_type="cosine",
        warmup_steps=round(config.warmup_ratio * steps),  # as the ARMs' schedule rounds it
        max_length=None,  # the texts are already cut to the ARMs' token caps
        seed=config.seed,
        data_seed=config.seed,
        bf16=config.mixed_precision == "bf16",  # trl turns bf16 on by default; slow on CPUs
        activation_checkpointing=config.gradient_checkpointing,  # trl's default is on
        logging_steps=config.log_interval,
        save_strategy="steps" if config.save_interval else "no",
        save_steps=config.save_interval or 1,
        save_total_limit=1,
        report_to="none",
        disable_tqdm=True,
        log_level="warning",
        dataloader_num_workers=0,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    dataset = Dataset.from_list(dpo_rows(tokenizer, pairs, objective, config))
    trainer = DPOTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora.peft_config(),
    )
    for callback in (PrinterCallback, ProgressCallback):
        trainer.remove_callback(callback)
    trainer.add_callback(_log_callback(objective, steps))
    return trainer


def _log_callback(objective: str, total: int):
    """A trl callback writing one compact log line per logging interval."""
    from transformers import TrainerCallback

    started = time.perf_counter()

    class LogLine(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs:
                return
            elapsed = time.perf_counter() - started
            log.info(
                "dpo %s step %d/%d | loss %.4f | margin %.3f acc %.2f | lr %.2e | %.1f s/step",
                objective,
                state.global_step,
                total,
                logs["loss"],
                logs.get("rewards/margins", float("nan")),
                logs.get("rewards/accuracies", float("nan")),
                logs.get("learning_rate", float("nan")),
                elapsed / max(state.global_step, 1),
            )

    return LogLine()


def write_manifest(folder, config, settings, records, fingerprint, num_pairs) -> None:
    """policies.json: what `load_policies` needs, and how every member was trained."""
    from uniarm.models import load_model

    model, _ = load_model(config.base_model)
    objectives = list(config.task_objectives)
    manifest = {
        "format": POLICIES_FORMAT,
        "method": "dpo",
        "base_model": config.base_model,
        "base_fingerprint": base_fingerprint(model),
        "objectives": objectives,
        "members": {o: o for o in objectives},
        "lora": {
            "rank": settings.lora_rank,
            "alpha": settings.lora_alpha,
            "target_modules": list(config.target_modules),
        },
        "dpo": cfg.to_dict(settings),
        "trainable_parameters": sum(r["trainable_parameters"] for r in records.values()),
        "training": {
            "settings": member_settings(config, settings, objectives[0]) | {"objective": None},
            "data": fingerprint,
            "train_pairs": num_pairs,
            "members": records,
        },
    }
    write_json(folder / POLICIES_MANIFEST, manifest)


def read_policies(path: str | Path) -> dict[str, Any]:
    """The `policies.json` of a policies folder, with a clear error when it is not one."""
    return read_member_manifest(
        path,
        POLICIES_MANIFEST,
        POLICIES_FORMAT,
        "a DPO policies folder",
        "train one with uniarm.baselines.train_policies",
    )


def load_policies(path: str | Path, device: str | torch.device = "cpu", model=None, tokenizer=None):
    """(peft model, tokenizer, manifest): every policy as a named adapter on one base model.

    The adapters are named after their objectives; `model.set_adapter(objective)` picks one.
    A given `model` gets the adapters in place (never pass a model that must stay plain).
    """
    from peft import PeftModel

    meta = read_policies(path)
    if model is None:
        from uniarm.models import load_model

        model, tokenizer = load_model(meta["base_model"], device=device)
    found = base_fingerprint(model)
    if found != meta["base_fingerprint"]:
        raise UniarmError(
            f"the DPO policies in {path} were trained on another base model "
            f"({meta['base_model']}: {meta['base_fingerprint']}, given: {found})",
            "load them over the model they were trained on",
        )
    first, *rest = meta["objectives"]
    folders = {o: Path(path) / meta["members"][o] for o in meta["objectives"]}
    peft_model = PeftModel.from_pretrained(model, folders[first], adapter_name=first)
    for objective in rest:
        peft_model.load_adapter(folders[objective], adapter_name=objective)
    peft_model.to(device).eval()
    return peft_model, tokenizer, meta
