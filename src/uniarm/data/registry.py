"""Every data set by name: `load_dataset_by_name(name, root)` and the `DATASETS` table.

Preference-pair data sets live in `DATASETS`; the humor rating sets, which are single rated
texts, in `RATED_DATASETS`. A name may carry a subset after a slash, e.g.
"hh_rlhf_test/harmless-base".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from uniarm.data import hh, humor, pku
from uniarm.data.humor import RatedText
from uniarm.data.root import resolve_data_root
from uniarm.data.schema import PreferencePair
from uniarm.errors import UniarmError

Root = str | os.PathLike | None


@dataclass(frozen=True)
class DatasetSpec:
    """A data set folder under the data root, how to load it and what it labels."""

    description: str
    load: Callable[..., list]
    objectives: tuple[str, ...] = ()
    subsets: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    pku.SCORED: DatasetSpec(
        "PKU-SafeRLHF-10K dev 500 + test 1,500, beaver-7b reward/cost scores and labels",
        pku.load_pku_saferlhf_10k_scored,
        ("helpful", "harmless"),
    ),
    pku.HUMAN: DatasetSpec(
        "PKU-SafeRLHF-10K, 500 pairs with human helpfulness/harmlessness winners",
        pku.load_pku_saferlhf_10k_human500,
        ("helpful", "harmless"),
    ),
    pku.SAFETY: DatasetSpec(
        "PKU-SafeRLHF test, 5,135 human safe-vs-unsafe pairs (harmless winner only)",
        pku.load_pku_saferlhf_safety_pairs_5k,
        ("harmless",),
    ),
    hh.TEST: DatasetSpec(
        "Anthropic HH-RLHF test splits, human chosen/rejected (harmless-base, helpful-*)",
        hh.load_hh_rlhf_test,
        ("harmless", "helpful"),
        tuple(hh.SUBSETS),
    ),
    hh.SCORED: DatasetSpec(
        "500 HH-RLHF train pairs with helpful, harmless and humor reward-model scores",
        hh.load_hh_rlhf_scored500,
        ("helpful", "harmless", "humor"),
    ),
}

RATED_DATASETS: dict[str, DatasetSpec] = {
    "humor_colbert40k": DatasetSpec(
        "ColBERT humor detection, 40,000 texts, humor 1/0", humor.load_humor_colbert40k
    ),
    "humor_hahackathon": DatasetSpec(
        "SemEval-2021 HaHackathon, 9,000 texts, is_humor (or humor/offense rating)",
        humor.load_humor_hahackathon,
    ),
    "humor_humicroedit": DatasetSpec(
        "SemEval-2020 Humicroedit, 12,071 edited headlines, mean funniness 0-3",
        humor.load_humor_humicroedit,
    ),
}


def _unknown(name: str, table: dict[str, DatasetSpec]) -> UniarmError:
    return UniarmError(f"unknown data set {name!r}", f"use one of: {', '.join(table)}")


def load_dataset_by_name(name: str, root: Root = None) -> list[PreferencePair]:
    """The pairs of a data set in `DATASETS`, or of one subset ("hh_rlhf_test/helpful-base")."""
    base, _, subset = name.partition("/")
    if base not in DATASETS:
        raise _unknown(name, DATASETS)
    spec = DATASETS[base]
    if not subset:
        return spec.load(root)
    if subset not in spec.subsets:
        raise UniarmError(
            f"{base} has no subset {subset!r}",
            f"use one of: {', '.join(spec.subsets)}" if spec.subsets else f"use {base}",
        )
    return spec.load(root, subsets=(subset,))


def load_rated_by_name(name: str, root: Root = None, **options) -> list[RatedText]:
    """The records of a humor rating set in `RATED_DATASETS` (options go to its loader)."""
    if name not in RATED_DATASETS:
        raise _unknown(name, RATED_DATASETS)
    return RATED_DATASETS[name].load(root, **options)


def available_datasets(root: Root = None) -> tuple[list[str], list[str]]:
    """(pair data sets, rated data sets) whose folders exist under the data root."""
    base: Path = resolve_data_root(root)
    pairs = [n for n in DATASETS if (base / n).is_dir()]
    rated = [n for n in RATED_DATASETS if (base / n).is_dir()]
    return pairs, rated
