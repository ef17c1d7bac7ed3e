"""Scoring heads on frozen features, fitted by regression on oracle scores and by pairs.

A head standardises its features, maps them to one score (linear, or a one-hidden-layer MLP)
and ends in an affine calibration to the teacher's units, so that a distilled score can be
read on the scale of the reward model it imitates. Two fits:

- `ridge` (linear, closed form): least squares on the standardised teacher scores and, with
  weight `w_pair`, on the within-pair score differences (winner minus loser), plus
  `alpha * |w|^2`. The difference rows make the head rank the two replies to one prompt,
  which is what pairwise agreement measures; the absolute rows keep the prompt-level scale.
- `torch` (linear or MLP, AdamW): `w_reg * MSE + w_pair * mean softplus(-(s_w - s_l))`, the
  Bradley-Terry loss (the reward-model loss of METHOD.md §1 for one objective), for pairs that
  only a person labelled and for MLP heads.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from uniarm.errors import UniarmError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HeadConfig:
    """How a head is shaped and fitted.

    Attributes:
        kind: "ridge" (closed form, linear) or "torch" (AdamW; needed for MLPs and label-only
            pairs).
        alpha: ridge penalty on the standardised features.
        hidden: width of the MLP's hidden layer; 0 = a linear head ("torch" only).
        w_reg: weight of the regression term.
        w_pair: weight of the Bradley-Terry term.
        weight_decay: AdamW weight decay (the regulariser).
        dropout: dropout on the standardised features while fitting.
        epochs: full-batch AdamW steps.
        lr: AdamW learning rate.
        seed: initialisation and dropout seed.
    """

    kind: str = "ridge"
    alpha: float = 3000.0
    hidden: int = 0
    w_reg: float = 1.0
    w_pair: float = 1.0
    weight_decay: float = 1.0
    dropout: float = 0.0
    epochs: int = 300
    lr: float = 1e-3
    seed: int = 0

    def __post_init__(self):
        if self.w_reg < 0 or self.w_pair < 0 or self.w_reg + self.w_pair == 0:
            raise UniarmError("a head needs a positive regression or pair weight")
        if self.kind not in ("ridge", "torch"):
            raise UniarmError(f"unknown head kind {self.kind!r}", "use ridge or torch")
        if self.kind == "ridge" and self.hidden:
            raise UniarmError("a ridge head is linear", "use kind torch for an MLP head")
        if self.hidden < 0 or self.epochs < 1 or not 0 <= self.dropout < 1 or self.alpha < 0:
            raise UniarmError(f"bad head settings: {asdict(self)}")

    def describe(self) -> str:
        if self.kind == "ridge":
            pair = f" + pair differences x{self.w_pair:g}" if self.w_pair else ""
            return f"ridge (alpha {self.alpha:g}) on scores{pair}"
        shape = f"MLP({self.hidden})" if self.hidden else "linear"
        terms = [t for t, w in (("regression", self.w_reg), ("Bradley-Terry", self.w_pair)) if w]
        return f"{shape} head, {' + '.join(terms)}"


class Head(nn.Module):
    """standardise -> linear or MLP -> affine calibration; one score per row."""

    def __init__(self, dim: int, hidden: int = 0, dropout: float = 0.0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(dim))
        self.register_buffer("calibration", torch.tensor([1.0, 0.0]))  # score = a * raw + b
        self.dropout = nn.Dropout(dropout)
        if hidden:
            self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, 1))
        else:
            self.net = nn.Sequential(nn.Linear(dim, 1))
        self.hidden = hidden

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.dropout((x - self.mean) / self.scale)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.calibration
        return a * self.raw(x) + b

    @torch.no_grad()
    def predict(self, features: np.ndarray) -> np.ndarray:
        self.eval()
        return self.forward(torch.as_tensor(features, dtype=torch.float32)).numpy()


def fit_head(
    features: np.ndarray,
    config: HeadConfig,
    targets: np.ndarray | None = None,
    pairs: np.ndarray | None = None,
) -> Head:
    """Fit a head on (N, d) features.

    Args:
        features: one row per text.
        config: shape and loss weights.
        targets: (N,) teacher scores (higher = better), NaN where a text has none; or None.
        pairs: (M, 2) row indices (winner, loser); or None.
    """
    x = torch.as_tensor(features, dtype=torch.float32)
    has_y = targets is not None and np.isfinite(targets).any()
    has_pairs = pairs is not None and len(pairs) > 0
    if not (has_y and config.w_reg) and not (has_pairs and config.w_pair):
        raise UniarmError("nothing to fit: no teacher scores and no pairs for this head")

    torch.manual_seed(config.seed)
    head = Head(x.shape[1], config.hidden, config.dropout)
    head.mean.copy_(x.mean(0))
    head.scale.copy_(x.std(0).clamp_min(1e-4))
    units = torch.as_tensor(targets if has_y else np.full(len(x), np.nan), dtype=torch.float64)
    known = torch.isfinite(units)
    y = units.float()
    if has_y:
        y = ((units - units[known].mean()) / units[known].std().clamp_min(1e-9)).float()
    pairs_t = torch.as_tensor(pairs if has_pairs else np.zeros((0, 2)), dtype=torch.long)
    if config.kind == "ridge":
        _fit_ridge(head, x, y, known, pairs_t, config)
    else:
        _fit_torch(head, x, y, known, pairs_t, config)
    head.eval()

    if has_y:
        calibrate(head, features[known.numpy()], units[known].numpy())
    return head


def calibrate(head: Head, features: np.ndarray, units: np.ndarray) -> Head:
    """Set the head's affine map so that its scores best fit `units` (least squares).

    The slope is kept positive: calibration rescales a head, it never turns its ranking round.
    """
    with torch.no_grad():
        raw = head.raw(torch.as_tensor(features, dtype=torch.float32)).double()
        y = torch.as_tensor(units, dtype=torch.float64)
        centred = raw - raw.mean()
        slope = (centred * (y - y.mean())).sum() / (centred**2).sum().clamp_min(1e-12)
        slope = slope.clamp_min(1e-6)
        head.calibration.copy_(torch.stack([slope, y.mean() - slope * raw.mean()]).float())
    return head


def _fit_ridge(head: Head, x, y, known, pairs, config: HeadConfig) -> None:
    """Closed-form ridge on absolute rows and within-pair difference rows (module docstring)."""
    z = ((x - head.mean) / head.scale).double()
    rows, values = [z[known]], [y[known].double()]
    if config.w_pair and len(pairs):
        w, lo = pairs.T
        scored = known[w] & known[lo]
        if not bool(scored.all()):
            log.warning("ridge head: %d pairs without scores ignored", int((~scored).sum()))
        root = config.w_pair**0.5
        rows.append(root * (z[w[scored]] - z[lo[scored]]))
        values.append(root * (y[w[scored]] - y[lo[scored]]).double())
    a, b = torch.cat(rows), torch.cat(values)
    if len(a) == 0:
        raise UniarmError("nothing to fit: a ridge head needs teacher scores")
    gram = a.T @ a + config.alpha * torch.eye(a.shape[1], dtype=a.dtype)
    weight = torch.linalg.solve(gram, a.T @ b)
    linear = head.net[0]
    with torch.no_grad():
        linear.weight.copy_(weight.float()[None])
        linear.bias.zero_()


def _fit_torch(head: Head, x, y, known, pairs, config: HeadConfig) -> None:
    """Full-batch AdamW on regression + Bradley-Terry (a few thousand rows fit in one batch)."""
    opt = torch.optim.AdamW(head.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    winners, losers = pairs.T if len(pairs) else (None, None)
    head.train()
    for _ in range(config.epochs):
        opt.zero_grad()
        s = head.raw(x)
        loss = s.new_zeros(())
        if config.w_reg and bool(known.any()):
            loss = loss + config.w_reg * ((s[known] - y[known]) ** 2).mean()
        if config.w_pair and winners is not None:
            margin = s[winners] - s[losers]
            loss = loss + config.w_pair * nn.functional.softplus(-margin).mean()
        loss.backward()
        opt.step()
    log.debug("head fitted: final loss %.4f", loss.item())


def head_tensors(head: Head, prefix: str) -> dict[str, torch.Tensor]:
    """The head's weights and buffers as flat tensors for safetensors."""
    return {f"{prefix}.{k}": v.detach().clone().contiguous() for k, v in head.state_dict().items()}


def head_from_tensors(tensors: dict[str, torch.Tensor], prefix: str, hidden: int) -> Head:
    own = {k[len(prefix) + 1 :]: v for k, v in tensors.items() if k.startswith(prefix + ".")}
    if "mean" not in own:
        raise UniarmError(f"the oracle checkpoint has no head for {prefix!r}")
    head = Head(own["mean"].shape[0], hidden)
    head.load_state_dict(own)
    return head.eval()
