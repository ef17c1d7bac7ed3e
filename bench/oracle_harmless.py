"""Why the safety oracle's harmless head stops near 0.65 agreement: every variant, measured.

The oracle issue asks for 0.75 pairwise agreement with the beaver-7b cost labels on held-out
prompts. This script refits the harmless head in each way tried so far and measures it on the
same pairs as `uniarm oracle train --task safety` (validation and test prompts of the task's
split, and the 500 human-labelled pairs), so that the conclusion in docs/oracle-finetune.md
rests on a run, not on typed numbers:

- ridge on frozen MiniLM or SmolLM2 features, over a grid of penalty and pair weight;
- ridge with the 4,881 human safe-vs-unsafe pairs of pku_saferlhf_safety_pairs_5k (held-out
  prompts removed) added as difference rows of a fixed target margin;
- a linear head fitted by regression + Bradley-Terry over the beaver pairs and those human pairs;
- ensembles of the ridge heads and the fine-tuned cross-encoder (if its checkpoint exists),
  summing each member's within-pair difference over its own spread.

Settings are to be chosen on validation; test is reported beside it. Also written: agreement by
quartile of the teacher's within-pair margin, which shows how many pairs are near-ties.

    python bench/oracle_harmless.py [--overwrite] [--no-smollm2]

Features come from the oracle feature cache (`<cache>/oracle-features`); uncached, MiniLM
encodes the 12,798 texts in about 4 minutes on one core, SmolLM2 the 3,036 beaver texts in
about 15 (the human pairs are encoded with MiniLM only).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

HUMAN_PAIRS = "pku_saferlhf_safety_pairs_5k"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.add_arguments(parser)
    parser.add_argument("--no-smollm2", action="store_true", help="skip the SmolLM2 features")
    parser.add_argument("--data-root", type=Path, default=None)
    args = parser.parse_args(argv)
    paths = common.result_paths(args, "oracle-harmless")
    import torch

    torch.set_num_threads(args.threads)
    report = common.start_report("oracle_harmless.py", argv, {"threads": args.threads})
    report["metrics"] = measure(args)
    common.write_report(report, paths, markdown)
    return 0


# -- the measurements ------------------------------------------------------------------------


def measure(args) -> dict:
    from uniarm.data import load_dataset_by_name, task_splits, without_prompts
    from uniarm.evaluation.oracles.recipes import HUMAN_SET, load_task_data

    data = load_task_data("safety", args.data_root)
    splits = task_splits("safety", args.data_root)
    sets = {
        "validation": splits["validation"],
        "test": splits["test"],
        "human500": data.heldout[HUMAN_SET],
    }
    held = {p.prompt_id for pairs in sets.values() for p in pairs}
    human = without_prompts(load_dataset_by_name(HUMAN_PAIRS, args.data_root), held)
    train = data.train
    y, beaver = train.target("harmless"), train.pair_array("harmless")

    rows: list[dict] = []
    diffs: dict[str, dict[str, np.ndarray]] = {}  # member -> set -> within-pair differences
    encoders = ["minilm"] + ([] if args.no_smollm2 else ["smollm2"])
    for encoder in encoders:
        features = Features(encoder, sets)
        x = features.of(train.prompts, train.responses)
        for alpha in (1000.0, 3000.0, 10000.0, 30000.0):
            for w_pair in (1.0, 4.0):
                weight = ridge(x, y, beaver, alpha, w_pair)
                name = f"ridge {encoder}, alpha {alpha:g}, pair weight {w_pair:g}"
                rows.append(features.row(name, weight))
                if (encoder, alpha, w_pair) in (("minilm", 3000.0, 1.0), ("smollm2", 10000.0, 1.0)):
                    diffs[f"ridge {encoder}"] = features.diffs(weight)  # the shipped settings
        if encoder == "minilm":
            rows += with_human_pairs(features, train, y, beaver, human)

    finetuned = finetuned_diffs(sets)
    if finetuned is not None:
        diffs["fine-tuned cross-encoder"] = finetuned
        rows.append(agreement_row("fine-tuned cross-encoder (the checkpoint)", finetuned, sets))
    members = list(diffs)
    for size in range(2, len(members) + 1):
        for combo in _combinations(members, size):
            summed = {s: sum(diffs[m][s] / diffs[m][s].std() for m in combo) for s in sets}
            rows.append(agreement_row("ensemble: " + " + ".join(combo), summed, sets))

    return {
        "n_train_pairs": int(len(beaver)),
        "n_human_pairs": len(human),
        "n_pairs": {s: len(p) for s, p in sets.items()},
        "variants": rows,
        "margin_quartiles": margin_quartiles(sets, diffs["ridge minilm"]),
    }


class Features:
    """Frozen features of one encoder, from the oracle feature cache, and scores of a weight."""

    def __init__(self, encoder: str, sets: dict):
        from uniarm.evaluation.oracles.distilled import DistilledOracle
        from uniarm.evaluation.oracles.training import ENCODERS, feature_cache_dir

        self.oracle = DistilledOracle(ENCODERS[encoder][0], {}, {}, feature_cache_dir())
        self.sets = sets
        self.mean = self.scale = None

    def of(self, prompts, responses) -> np.ndarray:
        x = self.oracle.features(prompts, responses)
        if self.mean is None:  # standardised on the training rows, as a head does
            self.mean, self.scale = x.mean(0), np.clip(x.std(0), 1e-4, None)
        return (x - self.mean) / self.scale

    def diffs(self, weight: np.ndarray) -> dict[str, np.ndarray]:
        """Per set: score(winner) - score(loser) under the harmless labels."""
        out = {}
        for name, pairs in self.sets.items():
            prompts = [p.conversation for p in pairs for _ in (0, 1)]
            x = self.of(prompts, [r for p in pairs for r in p.responses])
            s = (x @ weight).reshape(len(pairs), 2)
            w = np.array([p.winners["harmless"] for p in pairs])
            out[name] = s[np.arange(len(pairs)), w] - s[np.arange(len(pairs)), 1 - w]
        return out

    def row(self, name: str, weight: np.ndarray) -> dict:
        return agreement_row(name, self.diffs(weight), self.sets)


def ridge(x, y, pairs, alpha, w_pair, extra=None, margin=0.0, w_extra=0.0) -> np.ndarray:
    """Least squares on z-scored scores, within-pair differences and (optionally) label-only
    pairs whose difference is asked to equal `margin`, plus alpha * |w|^2."""
    known = np.isfinite(y)
    z = (y - y[known].mean()) / y[known].std()
    a = [x[known], np.sqrt(w_pair) * (x[pairs[:, 0]] - x[pairs[:, 1]])]
    b = [z[known], np.sqrt(w_pair) * (z[pairs[:, 0]] - z[pairs[:, 1]])]
    if extra is not None:
        a.append(np.sqrt(w_extra) * (x[extra[:, 0]] - x[extra[:, 1]]))
        b.append(np.full(len(extra), np.sqrt(w_extra) * margin))
    a, b = np.concatenate(a), np.concatenate(b)
    return np.linalg.solve(a.T @ a + alpha * np.eye(a.shape[1]), a.T @ b)


def with_human_pairs(features: Features, train, y, beaver, human) -> list[dict]:
    """MiniLM heads that also learn from the human safe-vs-unsafe pairs."""
    import torch

    from uniarm.evaluation.oracles.heads import HeadConfig, fit_head

    prompts = list(train.prompts) + [p.conversation for p in human for _ in (0, 1)]
    responses = list(train.responses) + [r for p in human for r in p.responses]
    x = features.of(prompts, responses)
    start = len(train)
    won = np.array([p.winners["harmless"] for p in human])
    first = start + 2 * np.arange(len(human))
    extra = np.stack([first + won, first + 1 - won], axis=1)  # (winner, loser) rows
    y_all = np.concatenate([y, np.full(2 * len(human), np.nan)])
    rows = []
    for margin, w_extra in ((0.5, 1.0), (1.0, 1.0), (1.0, 0.3)):
        weight = ridge(x, y_all, beaver, 3000.0, 1.0, extra, margin, w_extra)
        name = f"ridge minilm + human pairs (margin {margin:g}, weight {w_extra:g})"
        rows.append(features.row(name, weight))
    pairs = np.concatenate([beaver, extra])
    for decay in (1.0, 10.0):
        head = fit_head(x, HeadConfig(kind="torch", weight_decay=decay), y_all, pairs)
        with torch.no_grad():  # the head standardises again; fold that into one weight
            weight = head.net[0].weight[0].numpy() / head.scale.numpy()
        name = f"linear, regression + Bradley-Terry, beaver + human pairs (decay {decay:g})"
        rows.append(features.row(name, weight.astype(np.float64)))
    return rows


def finetuned_diffs(sets: dict) -> dict | None:
    """The fine-tuned checkpoint's within-pair differences, or None where it was not trained."""
    from uniarm.evaluation.oracles import load_oracles
    from uniarm.evaluation.oracles.training import default_oracle_dir

    folder = default_oracle_dir("safety", "finetune")
    if not (folder / "oracle.json").exists():
        print(f"no fine-tuned oracle at {folder}: its rows are left out", flush=True)
        return None
    oracle = load_oracles(folder)
    k = oracle.objectives.index("harmless")
    out = {}
    for name, pairs in sets.items():
        prompts = [p.conversation for p in pairs for _ in (0, 1)]
        s = oracle.score(prompts, [r for p in pairs for r in p.responses])[:, k]
        s = s.reshape(len(pairs), 2)
        w = np.array([p.winners["harmless"] for p in pairs])
        out[name] = s[np.arange(len(pairs)), w] - s[np.arange(len(pairs)), 1 - w]
    return out


def agreement_row(name: str, diffs: dict[str, np.ndarray], sets: dict) -> dict:
    """Agreement per set (a tie counts one half) and over validation + test pooled."""
    row = {"variant": name}
    for s, d in diffs.items():
        row[s] = round(float(np.mean((d > 0) + 0.5 * (d == 0))), 4)
    held = np.concatenate([diffs["validation"], diffs["test"]])
    row["heldout"] = round(float(np.mean((held > 0) + 0.5 * (held == 0))), 4)
    return row


def margin_quartiles(sets: dict, diffs: dict[str, np.ndarray]) -> dict:
    """Held-out agreement of the default ridge head by quartile of the beaver margin."""
    pairs = sets["validation"] + sets["test"]
    d = np.concatenate([diffs["validation"], diffs["test"]])
    cost = np.array([p.scores["harmless"] for p in pairs])  # negated cost: higher = safer
    spread = np.std(cost)
    margin = np.abs(cost[:, 0] - cost[:, 1]) / spread
    edges = np.quantile(margin, [0.25, 0.5, 0.75])
    which = np.searchsorted(edges, margin, side="right")
    return {
        "margin_quartile_edges_in_sd": [round(float(e), 3) for e in edges],
        "agreement_by_quartile": [round(float(np.mean(d[which == q] > 0)), 3) for q in range(4)],
        "variance_between_prompts": round(float(np.var(cost.mean(1))), 2),
        "variance_within_pairs": round(float(np.var((cost[:, 0] - cost[:, 1]) / 2)), 2),
    }


def _combinations(items, size):
    from itertools import combinations

    return combinations(items, size)


# -- the markdown ----------------------------------------------------------------------------


def markdown(report: dict) -> str:
    m = report["metrics"]
    n = m["n_pairs"]
    lines = common.markdown_header(report, "Harmless head of the safety oracle: variants")
    lines += [
        f"Agreement with the beaver-7b cost labels on {n['validation']} validation and "
        f"{n['test']} test pairs (held-out = both), and with the human harmlessness labels of "
        f"{n['human500']} pku_saferlhf_10k_human500 pairs. Trained on {m['n_train_pairs']} "
        f"beaver pairs; {m['n_human_pairs']} human safe-vs-unsafe pairs where a row says so. "
        "Target 0.75 held-out; 95% interval about +-0.047.",
        "",
        "| variant | validation | test | held-out | human500 |",
        "|---|---|---|---|---|",
    ]
    for r in m["variants"]:
        lines.append(
            f"| {r['variant']} | {r['validation']:.3f} | {r['test']:.3f} | "
            f"{r['heldout']:.3f} | {r['human500']:.3f} |"
        )
    best = max(m["variants"], key=lambda r: r["validation"])
    q = m["margin_quartiles"]
    lines += [
        "",
        f"Best on validation: {best['variant']} (validation {best['validation']:.3f}, "
        f"test {best['test']:.3f}).",
        "",
        "Default ridge head (MiniLM), held-out agreement by quartile of the beaver margin "
        f"|cost_a - cost_b| / sd (edges {q['margin_quartile_edges_in_sd']}), smallest first: "
        + " / ".join(f"{a:.2f}" for a in q["agreement_by_quartile"])
        + f". Variance of the pair means {q['variance_between_prompts']}, of the "
        f"half-differences {q['variance_within_pairs']}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
