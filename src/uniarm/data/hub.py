"""The Hugging Face hub route: the public data sets, read with `datasets`, in the same schema.

For users who have network access instead of the shared data folder. The records are converted
by the same functions as the local copies, so a hub pair and a local pair look alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from uniarm.data import hh, pku
from uniarm.data.files import check_fields
from uniarm.data.schema import PreferencePair
from uniarm.errors import UniarmError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class HubSource:
    repo: str
    data_dir: str | None
    fields: tuple[str, ...]
    convert: Callable[[dict, str, str], PreferencePair | None]


def _hh(objective: str) -> Callable[[dict, str, str], PreferencePair | None]:
    return lambda record, source, where: hh.hh_pair(record, objective, source, where)


HUB_DATASETS: dict[str, HubSource] = {
    "pku_saferlhf_10k": HubSource(
        "PKU-Alignment/PKU-SafeRLHF-10K", None, pku.HUMAN_FIELDS, pku.human_pair
    ),
    "pku_saferlhf": HubSource("PKU-Alignment/PKU-SafeRLHF", None, pku.HUMAN_FIELDS, pku.human_pair),
    **{
        f"hh_rlhf/{subset}": HubSource("Anthropic/hh-rlhf", subset, ("chosen", "rejected"), _hh(o))
        for subset, o in hh.SUBSETS.items()
    },
}


def load_hub_pairs(
    name: str, split: str = "train", limit: int | None = None
) -> list[PreferencePair]:
    """Pairs of a public data set (a key of `HUB_DATASETS`), e.g. "hh_rlhf/helpful-base"."""
    if name not in HUB_DATASETS:
        raise UniarmError(
            f"unknown hub data set {name!r}", f"use one of: {', '.join(HUB_DATASETS)}"
        )
    hub = HUB_DATASETS[name]
    try:
        import datasets

        table = datasets.load_dataset(hub.repo, data_dir=hub.data_dir, split=split)
    except Exception as exc:  # datasets raises many types: offline, missing, network, auth
        raise UniarmError(
            f"could not load {hub.repo} ({hub.data_dir or 'default'}, split {split}) "
            f"from the Hugging Face hub: {type(exc).__name__}: {exc}",
            "check the network (and HF_HUB_OFFLINE / HF_DATASETS_OFFLINE), or use the local "
            "copies with --data-root / UNIARM_DATA",
        ) from exc

    where = f"hub {hub.repo}:{split}"
    records = [dict(r) for r in (table if limit is None else table.select(range(limit)))]
    check_fields(records, hub.fields, where)
    converted = [hub.convert(r, name, f"{where} record {i}") for i, r in enumerate(records)]
    pairs = [p for p in converted if p is not None]
    log.info("%s: %d pairs (%d records skipped)", name, len(pairs), len(records) - len(pairs))
    return pairs
