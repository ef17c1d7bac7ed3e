"""Real reward models as oracles: any Hugging Face sequence-classification reward model.

One model per objective, given by a local folder or a hub name. The conversation is laid out
with the reward model's own chat template, or with a configured template such as the one the
beaver-7b models were trained on. A cost model (higher = worse) is configured with sign -1,
and this is the only place its sign is turned.

A spec file (YAML or JSON) names one model per objective:

    task: safety
    reward_models:
      helpful: {model: path/or/hub-name, template: "USER: {prompt} ASSISTANT:{response}"}
      harmless: {model: path/or/hub-name, sign: -1}
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from uniarm.errors import UniarmError
from uniarm.evaluation.oracles.base import Oracle, StackedOracle
from uniarm.evaluation.oracles.text import as_turns, plain_dialogue

log = logging.getLogger(__name__)

BEAVER_TEMPLATE = "BEGINNING OF CONVERSATION: USER: {prompt} ASSISTANT:{response}"


@dataclass(frozen=True)
class RewardModelSpec:
    """One reward model scoring one objective.

    Attributes:
        objective: the objective it scores.
        model: a local model folder or a hub name (owner/name).
        sign: +1 for a reward (higher = better), -1 for a cost (higher = worse).
        template: a format string with {prompt} and {response}; None = the model's chat
            template (a plain "User: ... Assistant: ..." layout when it has none).
        output_index: which logit is the score (the only one for a reward model).
        max_tokens: longer inputs keep their last `max_tokens` tokens.
    """

    objective: str
    model: str
    sign: float = 1.0
    template: str | None = None
    output_index: int = 0
    max_tokens: int = 1024

    def __post_init__(self):
        if self.sign not in (1, -1, 1.0, -1.0):
            raise UniarmError(f"sign of {self.objective!r} must be +1 or -1, got {self.sign}")
        if self.template is not None and not {"{prompt}", "{response}"} <= _fields(self.template):
            raise UniarmError(
                f"the template of {self.objective!r} must contain {{prompt}} and {{response}}",
                f'for example "{BEAVER_TEMPLATE}"',
            )


def _fields(template: str) -> set[str]:
    import string

    return {f"{{{name}}}" for _, name, _, _ in string.Formatter().parse(template) if name}


class RewardModelOracle(Oracle):
    """One Hugging Face `AutoModelForSequenceClassification` reward model for one objective."""

    def __init__(self, spec: RewardModelSpec, device: str = "cpu", dtype=torch.float32):
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.spec = spec
        self.objectives = (spec.objective,)
        sign = "" if spec.sign > 0 else ", sign -1 (a cost)"
        self.name = f"reward-model {spec.model} ({spec.objective}{sign})"
        source = _resolve(spec.model)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                source, dtype=dtype, output_loading_info=True
            )
        except (OSError, ValueError) as exc:
            raise UniarmError(
                f"could not load the reward model {spec.model!r}: {exc}",
                "pass a folder or hub name of a sequence-classification model",
            ) from exc
        if info.get("missing_keys"):
            # A causal LM or a custom score head loads "successfully" with a random head.
            raise UniarmError(
                f"{spec.model} has no trained classification head (newly initialised: "
                f"{', '.join(sorted(info['missing_keys'])[:4])})",
                "use a sequence-classification reward model; a checkpoint with a custom head "
                "(e.g. beaver's score_head) needs its head renamed to the class's `score`",
            )
        if spec.output_index >= model.config.num_labels:
            raise UniarmError(
                f"output_index {spec.output_index} but {spec.model} has "
                f"{model.config.num_labels} output(s)"
            )
        self.tokenizer.padding_side = "right"  # real tokens keep their positions
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.tokenizer.pad_token_id
        self.model = model.to(device).eval().requires_grad_(False)
        self.device = device
        # A chat template writes its own special tokens; other layouts get the tokenizer's.
        self._chat = spec.template is None and bool(getattr(self.tokenizer, "chat_template", None))

    def format(self, prompt, response: str) -> str:
        """The reward model's input text for one (prompt, response)."""
        if self.spec.template is not None:
            return self.spec.template.format(prompt=plain_dialogue(prompt), response=response)
        turns = as_turns(prompt)
        if self._chat:
            messages = [{"role": t.role, "content": t.content} for t in turns]
            messages.append({"role": "assistant", "content": response})
            return self.tokenizer.apply_chat_template(messages, tokenize=False)
        return f"User: {plain_dialogue(prompt)}\n\nAssistant: {response}"

    @torch.no_grad()
    def _score(self, prompts, responses, batch_size):
        texts = [self.format(p, r) for p, r in zip(prompts, responses)]
        order = np.argsort([len(t) for t in texts], kind="stable")
        out = np.zeros(len(texts), dtype=np.float32)
        self.tokenizer.truncation_side = "left"
        for start in range(0, len(texts), batch_size):
            idx = order[start : start + batch_size]
            enc = self.tokenizer(
                [texts[i] for i in idx],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=self.spec.max_tokens,
                add_special_tokens=not self._chat,
            ).to(self.device)
            logits = self.model(**enc).logits[:, self.spec.output_index].float()
            out[idx] = self.spec.sign * logits.cpu().numpy()
        return out[:, None]


def _resolve(model: str) -> str:
    path = Path(model).expanduser()
    if path.exists():
        return str(path)
    if model.count("/") == 1:
        return model
    raise UniarmError(f"reward model {model!r} is neither a folder nor a hub name (owner/name)")


def reward_model_oracle(specs: list[RewardModelSpec], objectives=None, **kwargs) -> Oracle:
    """One oracle over several reward models, columns in `objectives` order."""
    if not specs:
        raise UniarmError("no reward models given")
    parts = [RewardModelOracle(s, **kwargs) for s in specs]
    return parts[0] if len(parts) == 1 and objectives is None else StackedOracle(parts, objectives)


def load_spec_file(path: Path) -> tuple[str | None, list[RewardModelSpec]]:
    """(task, specs) from a YAML/JSON reward-model spec file (format in the module docstring)."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except yaml.YAMLError as exc:
        raise UniarmError(f"{path} is not valid YAML/JSON: {exc}") from exc
    models = data.get("reward_models") if isinstance(data, dict) else None
    if not isinstance(models, dict) or not models:
        raise UniarmError(
            f"{path} names no reward models",
            "write `reward_models: {objective: {model: ..., sign: 1}}` (see `uniarm oracle -h`)",
        )
    specs = []
    for objective, entry in models.items():
        entry = {"model": entry} if isinstance(entry, str) else dict(entry)
        try:
            specs.append(RewardModelSpec(objective=objective, **entry))
        except TypeError as exc:
            raise UniarmError(f"bad reward model entry for {objective!r} in {path}: {exc}") from exc
    return data.get("task"), specs
