"""The hub route: a clear error without a hub, and the same schema when one answers."""

from __future__ import annotations

import datasets
import pytest

from uniarm.data.hub import HUB_DATASETS, load_hub_pairs
from uniarm.data.schema import Turn
from uniarm.errors import UniarmError


def test_no_hub_gives_a_clear_error(monkeypatch):
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(UniarmError) as info:
        load_hub_pairs("hh_rlhf/helpful-base", split="test")
    assert "Anthropic/hh-rlhf" in str(info.value) and "--data-root" in str(info.value)


def test_unknown_hub_name():
    with pytest.raises(UniarmError, match="pku_saferlhf_10k"):
        load_hub_pairs("nope")


def test_hub_records_are_converted_like_local_ones(monkeypatch):
    calls = []

    def fake_load_dataset(repo, data_dir=None, split=None):
        calls.append((repo, data_dir, split))
        if repo == "Anthropic/hh-rlhf":
            return datasets.Dataset.from_list(
                [
                    {
                        "chosen": "\n\nHuman: q\n\nAssistant: yes",
                        "rejected": "\n\nHuman: q\n\nAssistant: no",
                    }
                ]
            )
        return datasets.Dataset.from_list(
            [
                {
                    "prompt": "q",
                    "response_0": "a",
                    "response_1": "b",
                    "better_response_id": 1,
                    "safer_response_id": 0,
                }
            ]
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    (pair,) = load_hub_pairs("hh_rlhf/harmless-base", split="test")
    assert calls[-1] == ("Anthropic/hh-rlhf", "harmless-base", "test")
    assert pair.conversation == (Turn("user", "q"),)
    assert pair.chosen_rejected("harmless") == ("yes", "no")

    (pair,) = load_hub_pairs("pku_saferlhf_10k")
    assert calls[-1] == ("PKU-Alignment/PKU-SafeRLHF-10K", None, "train")
    assert pair.winners == {"helpful": 1, "harmless": 0} and pair.responses == ("a", "b")
    assert set(HUB_DATASETS) >= {"pku_saferlhf", "hh_rlhf/helpful-online"}
