"""Settings of a preference sweep (METHOD.md §6), shared by `uniarm evaluate` and recipes."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from uniarm.config import field
from uniarm.errors import UniarmError
from uniarm.objectives import get_task

# Hypervolume reference points (METHOD.md §6: part of the task's configuration, the same for
# every method compared). Each is the 1st percentile, per objective, of the teacher reward
# models' recorded scores on the task's data (beaver-7b reward and negated cost for safety; the
# helpful, harmless and humor models of hh_rlhf_scored500 for the assistant task), rounded down:
# on the scale the distilled oracles reproduce, nearly every real reply scores above it.
REFERENCE_POINTS: dict[str, tuple[float, ...]] = {
    "safety": (-15.0, -42.0),
    "assistant": (-2.5, -5.0, -2.5),
}


@dataclass
class EvalConfig:
    """One method's sweep over a task's preference grid.

    Parameters:
        task: `safety` (helpful, harmless) or `assistant` (helpful, harmless, humor).
        method: the label of this run in tables and plots (default: the method the checkpoint
            records, e.g. uniarm or parm; `base` for the base model alone).
        arm: the reward model checkpoint guiding the base model; none for the base model alone.
        base_model: the frozen model that writes the replies.
        data_root: the shared data folder (default: $UNIARM_DATA or ../shared/data).
        split_seed: seed of the prompt split; keep it equal to the training run's.
        split: whose prompts are decoded: `test` (what results report) or `validation` (for
            choosing settings without looking at the test prompts).
        num_prompts: held-out prompts decoded under every preference (at most the split's).
        oracle: an oracle folder, or none for the task's embedded distilled oracles.
        reference: the hypervolume reference point (default: the task's).
        edge_step, interior_step: the preference grid (METHOD.md §6).
        device: where a lone process decodes; under `torchrun` / `accelerate launch` each
            process takes the device its launcher gives it. Not part of the run's identity:
            a sweep started on one device resumes on another.
    """

    task: str = field("safety", help="task: safety or assistant")
    method: str | None = field(
        None,
        help="label of this run in tables and plots (default: the method recorded in the "
        "checkpoint, or base without --arm)",
    )
    arm: Path | None = field(None, help="ARM checkpoint folder (none: the base model alone)")
    base_model: str = field("smollm2-135m-instruct", help="base model that writes the replies")
    data_root: Path | None = field(None, help="shared data folder")
    split_seed: int = field(0, help="seed of the prompt split (same as training)")
    split: str = field(
        "test",
        help="prompts of the test split (what results report) or the validation split (to "
        "choose settings without looking at the test prompts)",
    )
    num_prompts: int = field(16, help="held-out prompts per preference")
    max_new_tokens: int = field(48, help="most tokens per reply")
    batch_size: int = field(32, help="rows decoded together")
    prompts_per_chunk: int = field(
        4, help="prompts decoded (under all preferences) per chunk, per process"
    )
    beta: float = field(1.0, help="guidance temperature beta")
    edge_step: float = field(0.1, help="grid step along the simplex edges")
    interior_step: float = field(0.2, help="grid step inside the simplex (3+ objectives)")
    oracle: Path | None = field(None, help="oracle folder (none: the embedded distilled ones)")
    reference: tuple[float, ...] | None = field(None, help="hypervolume reference point")
    output: Path | None = field(
        None,
        help="results folder (default: runs/eval/<task>-<method>, with -validation for a "
        "validation run)",
    )
    overwrite: bool = field(False, help="move an earlier, different run aside and start again")
    threads: int = field(0, help="torch threads (0: torch's default)")
    device: str = field(
        "cpu",
        help="device of the decoding models, e.g. cuda (under a launcher: each process its own)",
    )

    def __post_init__(self):
        task = get_task(self.task)
        if self.num_prompts < 1:
            raise UniarmError("num_prompts must be >= 1")
        if self.split not in ("test", "validation"):
            raise UniarmError(
                f"unknown split {self.split!r} to evaluate on",
                "use test, or validation to choose settings (train prompts are trained on)",
            )
        if self.prompts_per_chunk < 1:
            raise UniarmError("prompts_per_chunk must be >= 1")
        if self.reference is not None:
            self.reference = tuple(float(v) for v in self.reference)
            if len(self.reference) != len(task.objectives):
                raise UniarmError(
                    f"reference point {self.reference} has {len(self.reference)} values but the "
                    f"{task.name} task has {len(task.objectives)} objectives "
                    f"({', '.join(task.objectives)})",
                    "give one value per objective",
                )
        if self.method is None:
            from uniarm.decoding.loading import checkpoint_method

            # a wrong --arm path fails here, before any model loads
            self.method = "base" if self.arm is None else checkpoint_method(self.arm)
        if self.output is None:
            # a validation run gets its own folder: sharing one would refuse the test run after
            suffix = "" if self.split == "test" else f"-{self.split}"
            self.output = Path("runs") / "eval" / f"{self.task}-{self.method}{suffix}"

    @property
    def reference_point(self) -> tuple[float, ...]:
        return self.reference or REFERENCE_POINTS[self.task]

    def identity(self, num_prompts: int | None = None) -> dict:
        """The settings that decide the results; a folder holds one identity only.

        Args:
            num_prompts: the prompts actually decoded, when the split holds fewer than
                `self.num_prompts`: the identity records what was decoded, not what was asked.
        """
        keep = (
            "task",
            "method",
            "arm",
            "base_model",
            "split_seed",
            "num_prompts",
            "max_new_tokens",
            "beta",
            "edge_step",
            "interior_step",
            "oracle",
        )
        identity = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(self).items() if k in keep
        }
        if num_prompts is not None:
            identity["num_prompts"] = num_prompts
        if self.split != "test":  # test runs keep the identity they had before the option
            identity["split"] = self.split
        return identity
