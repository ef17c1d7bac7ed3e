"""`TrainConfig`: every setting of `uniarm train`, its CLI flags and its YAML recipes.

The defaults are the small CPU profile (about 15 minutes on two cores for the default model):
256 training pairs of the safety task, one epoch. The paper's settings (METHOD.md §3, paper
Appendix C) are the GPU recipes under `recipes/`.

Methods (METHOD.md §3-§5):

| method            | adapter          | ranks       | loss                         |
|-------------------|------------------|-------------|------------------------------|
| `uniarm`          | MoSLoRA          | r1=4, r2=4  | Σ λ_i L_i + c · L_g          |
| `uniarm-noglobal` | MoSLoRA          | r1=4, r2=4  | Σ λ_i L_i (c = 0)            |
| `uniarm-modonly`  | MoSLoRA          | r1=0, r2=8  | Σ λ_i L_i (c = 0)            |
| `parm`            | PBLoRA           | r1=4, r2=4  | Σ λ_i L_i                    |
| `genarm`          | LoRA per objective | r=8, α=16 | L_i for member i             |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from uniarm import config as cfg
from uniarm.adapters.config import DEFAULT_TARGETS, AdapterConfig
from uniarm.adapters.lora import LoRASettings
from uniarm.config import field
from uniarm.errors import UniarmError
from uniarm.objectives import get_task


@dataclass(frozen=True)
class MethodSpec:
    """What a method trains: its adapter, default shapes and whether it has a global loss."""

    adapter: str  # moslora, pblora or lora
    rank_shared: int = 0
    rank_modulation: int = 0
    lora_rank: int = 0
    alpha: float = 8.0
    global_loss: bool = False


METHODS: dict[str, MethodSpec] = {
    "uniarm": MethodSpec("moslora", rank_shared=4, rank_modulation=4, global_loss=True),
    "uniarm-noglobal": MethodSpec("moslora", rank_shared=4, rank_modulation=4),
    "uniarm-modonly": MethodSpec("moslora", rank_shared=0, rank_modulation=8),
    "parm": MethodSpec("pblora", rank_shared=4, rank_modulation=4),
    "genarm": MethodSpec("lora", lora_rank=8, alpha=16.0),
}

# The global loss weight c of UniARM (paper §5: 0.5 for safety, 0.2 for the assistant task).
GLOBAL_WEIGHT = {"safety": 0.5, "assistant": 0.2}

# Settings that change how a run is watched or where it lives, not what it computes: a run
# may resume with other values of these.
NOT_RESULT = (
    "output_dir",
    "data_root",
    "log_interval",
    "save_interval",
    "eval_interval",
    "num_threads",
)

Method = Literal["uniarm", "uniarm-noglobal", "uniarm-modonly", "parm", "genarm"]


@dataclass
class TrainConfig:
    """Settings of one ARM training run (`uniarm train`).

    Parameters:
        method: which ARM to train (see the module docstring).
        task: `safety` (helpful, harmless) or `assistant` (helpful, harmless, humor).
        objectives: a subset of the task's objectives (default: all of them).
        base_model: the ARM's backbone: an embedded model name, a model folder or a hub name.
        data_root: the folder holding the shared data sets (default: ../shared/data).
        split_seed: seed of the train/validation/test split by prompt (keep it fixed across
            the methods compared, so they see the same held-out prompts).
        num_pairs: training pairs drawn from the task's train split (0: all of them).
        eval_pairs: validation pairs for the held-out pairwise accuracy (0: no evaluation).
        max_prompt_tokens: prompts longer than this are cut from the left.
        max_response_tokens: responses longer than this are cut from the right (no EOS label).
        batch_size: pairs per forward on each process.
        grad_accumulation: forwards per optimizer step; the effective batch is
            batch_size · grad_accumulation · processes.
        lr: peak learning rate of AdamW.
        weight_decay: AdamW weight decay.
        max_grad_norm: gradient clipping (per ARM; 0 turns it off).
        epochs: passes over the training pairs (fractions allowed).
        max_steps: optimizer steps; overrides `epochs` when > 0.
        warmup_ratio: fraction of the steps with a linear warm-up before the cosine decay.
        beta_r: β_r, the temperature of the ARM loss (METHOD.md §1).
        dirichlet_p: the concentration p of the Dirichlet(p·1) preference draws (§5).
        global_weight: c, the weight of UniARM's global loss (default 0.5 safety, 0.2
            assistant; 0 for the methods without one).
        rank_shared, rank_modulation: r1, r2 of MoSLoRA / PBLoRA (default: the method's).
        lora_rank: GenARM's LoRA rank (default 8).
        alpha: LoRA alpha (default 8 for MoSLoRA / PBLoRA, 16 for GenARM).
        target_modules: the linear layers that get adapters.
        objective_embedding: how MoSLoRA's objective embeddings are made (see AdapterConfig).
        mixed_precision: `no` (fp32) or `bf16` autocast (GPUs).
        gradient_checkpointing: trade compute for memory in the transformer body.
        seed: seed of the adapter initialisation, the data order and the preference draws.
        output_dir: the run folder (default: runs/<task>-<method>-seed<seed>).
        log_interval: optimizer steps between log lines.
        save_interval: optimizer steps between resumable checkpoints (0: only at the end).
        eval_interval: optimizer steps between held-out evaluations (0: only at the end).
        num_threads: torch CPU threads (None: torch's default).
    """

    method: Method = field("uniarm", help="uniarm, parm, genarm, uniarm-noglobal, uniarm-modonly")
    task: str = field("safety", help="safety or assistant")
    objectives: tuple[str, ...] | None = field(None, help="subset of the task's objectives")
    base_model: str = field("smollm2-135m-instruct", help="the ARM's backbone model")
    data_root: Path | None = field(None, help="folder of the shared data sets")
    split_seed: int = field(0, help="seed of the split by prompt")
    num_pairs: int | None = field(256, help="training pairs (0 or None: the whole train split)")
    eval_pairs: int = field(48, help="validation pairs for held-out accuracy (0: none)")
    max_prompt_tokens: int = field(128, help="prompt length cap (cut from the left)")
    max_response_tokens: int = field(128, help="response length cap (cut from the right)")
    batch_size: int = field(4, help="pairs per forward per process")
    grad_accumulation: int = field(2, help="forwards per optimizer step")
    lr: float = field(5e-3, help="peak learning rate (paper prints 1e-2, PARM uses 5e-4)")
    weight_decay: float = field(0.0, help="AdamW weight decay")
    max_grad_norm: float = field(1.0, help="gradient clipping per ARM (0: off)")
    epochs: float = field(1.0, help="passes over the training pairs")
    max_steps: int | None = field(0, help="optimizer steps (0 or None: from epochs)")
    warmup_ratio: float = field(0.1, help="fraction of steps of linear warm-up")
    beta_r: float = field(0.05, help="temperature beta_r of the ARM loss")
    dirichlet_p: float = field(0.5, help="concentration p of the preference draws")
    global_weight: float | None = field(
        None, help="UniARM's global loss weight c (default: 0.5 safety, 0.2 assistant)"
    )
    rank_shared: int | None = field(
        None, help="r1 (MoSLoRA / PBLoRA; default: the method's, 4, and 0 for uniarm-modonly)"
    )
    rank_modulation: int | None = field(
        None, help="r2 (MoSLoRA / PBLoRA; default: the method's, 4, and 8 for uniarm-modonly)"
    )
    lora_rank: int | None = field(None, help="GenARM's LoRA rank (default: 8)")
    alpha: float | None = field(
        None, help="LoRA alpha (default: 8 for MoSLoRA / PBLoRA, 16 for GenARM)"
    )
    target_modules: tuple[str, ...] = field(DEFAULT_TARGETS, help="linear layers to adapt")
    objective_embedding: Literal["mean", "centered"] = field(
        "mean", help="UniARM/PARM objective embeddings: mean (METHOD.md) or centered"
    )
    mixed_precision: Literal["no", "bf16"] = field("no", help="no (fp32) or bf16")
    gradient_checkpointing: bool = field(False, help="checkpoint the transformer body")
    seed: int = field(0, help="seed of init, data order and preference draws")
    output_dir: Path | None = field(None, help="run folder")
    log_interval: int = field(1, help="steps between log lines")
    save_interval: int = field(10, help="steps between resumable checkpoints (0: end only)")
    eval_interval: int = field(0, help="steps between held-out evaluations (0: end only)")
    num_threads: int | None = field(None, help="torch CPU threads")

    def __post_init__(self):
        if self.method not in METHODS:
            raise UniarmError(
                f"unknown method {self.method!r}", f"use one of: {', '.join(METHODS)}"
            )
        task = get_task(self.task)
        if self.objectives is not None:
            self.objectives = tuple(self.objectives)
            unknown = [o for o in self.objectives if o not in task.objectives]
            if unknown or not self.objectives or len(set(self.objectives)) < len(self.objectives):
                raise UniarmError(
                    f"objectives {list(self.objectives)} are not a subset of the {self.task} "
                    f"task's objectives",
                    f"choose among: {', '.join(task.objectives)}",
                )
        self.target_modules = tuple(self.target_modules)
        self.num_pairs, self.max_steps = self.num_pairs or 0, self.max_steps or 0  # None = 0
        if self.output_dir is not None:
            self.output_dir = Path(self.output_dir)
        self._check_numbers()
        self._check_method_settings()

    def _check_numbers(self) -> None:
        positive = ("max_prompt_tokens", "batch_size", "grad_accumulation", "log_interval")
        for name in positive:
            if getattr(self, name) < 1:
                raise UniarmError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("save_interval", "eval_interval", "eval_pairs", "num_pairs", "max_steps"):
            if getattr(self, name) < 0:
                raise UniarmError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_response_tokens < 2:
            raise UniarmError("max_response_tokens must be >= 2 (a token and EOS)")
        if not self.max_steps and not self.epochs > 0:
            raise UniarmError(f"epochs must be > 0, got {self.epochs}", "or give max_steps")
        for name in ("lr", "beta_r", "dirichlet_p"):
            if not getattr(self, name) > 0:
                raise UniarmError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.weight_decay < 0 or self.max_grad_norm < 0:
            raise UniarmError("weight_decay and max_grad_norm must be >= 0")
        if not 0 <= self.warmup_ratio < 1:
            raise UniarmError(f"warmup_ratio must lie in [0, 1), got {self.warmup_ratio}")
        if self.mixed_precision not in ("no", "bf16"):
            raise UniarmError(f"mixed_precision {self.mixed_precision!r}", "use no or bf16")
        if self.num_threads is not None and self.num_threads < 1:
            raise UniarmError(f"num_threads must be >= 1, got {self.num_threads}")

    def _check_method_settings(self) -> None:
        spec = self.spec
        if spec.adapter == "lora":
            given = [n for n in ("rank_shared", "rank_modulation") if getattr(self, n) is not None]
            if given:
                raise UniarmError(f"genarm has no {', '.join(given)}", "use --lora-rank")
        elif self.lora_rank is not None:
            raise UniarmError(f"{self.method} has no lora_rank", "use --rank-shared / -modulation")
        if self.method == "uniarm-modonly" and self.rank_shared not in (None, 0):
            raise UniarmError("uniarm-modonly has no shared module (r1 = 0)", "drop --rank-shared")
        if self.global_weight is not None:
            if self.global_weight < 0:
                raise UniarmError(f"global_weight must be >= 0, got {self.global_weight}")
            if self.global_weight > 0 and not spec.global_loss:
                raise UniarmError(
                    f"method {self.method} has no global loss (c = 0)",
                    "drop --global-weight or use --method uniarm",
                )
        self.adapter_settings()  # shapes are checked by the adapter configs themselves

    # -- resolved settings -------------------------------------------------------------------

    @property
    def spec(self) -> MethodSpec:
        return METHODS[self.method]

    @property
    def task_objectives(self) -> tuple[str, ...]:
        return self.objectives or get_task(self.task).objectives

    @property
    def global_loss_weight(self) -> float:
        """c: the given value, else the task's (UniARM only), else 0."""
        if self.global_weight is not None:
            return float(self.global_weight)
        return GLOBAL_WEIGHT[self.task] if self.spec.global_loss else 0.0

    @property
    def run_dir(self) -> Path:
        return self.output_dir or Path("runs") / f"{self.task}-{self.method}-seed{self.seed}"

    def adapter_settings(self) -> AdapterConfig | LoRASettings:
        """The adapter shapes of this run: the method's defaults, overridden where given."""
        spec = self.spec
        alpha = spec.alpha if self.alpha is None else self.alpha
        if spec.adapter == "lora":
            rank = spec.lora_rank if self.lora_rank is None else self.lora_rank
            return LoRASettings(rank=rank, alpha=alpha, target_modules=self.target_modules)
        return AdapterConfig(
            adapter=spec.adapter,
            rank_shared=spec.rank_shared if self.rank_shared is None else self.rank_shared,
            rank_modulation=(
                spec.rank_modulation if self.rank_modulation is None else self.rank_modulation
            ),
            alpha=alpha,
            target_modules=self.target_modules,
            objective_embedding=self.objective_embedding,
        )

    def resolved(self) -> dict[str, Any]:
        """Every setting with the method's defaults filled in (recorded in checkpoints)."""
        out = cfg.to_dict(self)
        out["objectives"] = self.task_objectives
        out["global_weight"] = self.global_loss_weight
        out["output_dir"] = str(self.run_dir)
        out["adapter"] = cfg.to_dict(self.adapter_settings())
        for name in ("rank_shared", "rank_modulation", "lora_rank", "alpha"):
            out.pop(name)
        return json.loads(json.dumps(out))  # tuples become lists, as in the saved JSON

    def result_settings(self) -> dict[str, Any]:
        """The resolved settings that decide what the run computes (compared on resume)."""
        return {k: v for k, v in self.resolved().items() if k not in NOT_RESULT}
