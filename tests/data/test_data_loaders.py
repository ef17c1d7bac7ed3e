"""Loaders on the real shared files: counts from PROVENANCE.md, fields, cost negation, labels.

Expected values come from the PROVENANCE.md files or from reading the raw files here with the
standard library (an independent route from the loaders).
"""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pytest

from uniarm.data import hh
from uniarm.data.registry import DATASETS, load_dataset_by_name, load_rated_by_name
from uniarm.data.schema import Turn
from uniarm.errors import UniarmError


def raw_json(data_root, relpath):
    return json.loads((data_root / relpath).read_text())


@pytest.fixture(scope="module")
def pku_scored(data_root):
    return load_dataset_by_name("pku_saferlhf_10k_scored", data_root)


# ---------------------------------------------------------------- PKU-SafeRLHF, scored


def test_pku_scored_counts_and_label_combinations(pku_scored):
    assert len(pku_scored) == 2000
    assert len({p.prompt_id for p in pku_scored}) == 1776
    assert Counter(p.source for p in pku_scored) == {
        "pku_saferlhf_10k_scored/dev": 500,
        "pku_saferlhf_10k_scored/test": 1500,
    }
    combos = Counter((p.winners["helpful"], p.winners["harmless"]) for p in pku_scored)
    assert combos == {(0, 1): 590, (1, 0): 560, (1, 1): 428, (0, 0): 422}


def test_pku_scored_cost_is_negated_once(pku_scored, data_root):
    raw = raw_json(data_root, "pku_saferlhf_10k_scored/dev.json")
    raw += raw_json(data_root, "pku_saferlhf_10k_scored/test.json")
    for pair, record in zip(pku_scored, raw, strict=True):
        assert pair.prompt == record["prompt"].strip()
        assert pair.scores["helpful"] == (record["help_score_0"], record["help_score_1"])
        assert pair.scores["harmless"] == (-record["harm_score_0"], -record["harm_score_1"])
        assert pair.winners == {
            "helpful": record["better_response_id"],
            "harmless": record["safer_response_id"],
        }


def test_pku_scored_safer_response_has_the_higher_harmless_score(pku_scored):
    # The labels derive from the scores: on every untied pair the winner scores higher.
    for objective, expected_ties in (("helpful", 4), ("harmless", 11)):
        tied = [p for p in pku_scored if p.scores[objective][0] == p.scores[objective][1]]
        assert len(tied) == expected_ties
        for pair in pku_scored:
            a, b = pair.scores[objective]
            if a != b:
                w = pair.winners[objective]
                assert pair.scores[objective][w] > pair.scores[objective][1 - w]


def test_pku_scored_labels_vs_human_labels_on_the_overlap(pku_scored, data_root):
    # PROVENANCE: 104 exact overlaps; agreement 87.5% (help) and 76.9% (harm).
    human = load_dataset_by_name("pku_saferlhf_10k_human500", data_root)
    by_key = {(p.prompt, p.responses): p for p in human}
    shared = [
        (p, by_key[(p.prompt, p.responses)])
        for p in pku_scored
        if (p.prompt, p.responses) in by_key
    ]
    assert len(shared) == 104
    assert sum(a.winners["helpful"] == b.winners["helpful"] for a, b in shared) == 91
    assert sum(a.winners["harmless"] == b.winners["harmless"] for a, b in shared) == 80


# ---------------------------------------------------------------- PKU-SafeRLHF, human


def test_pku_human500_labels(data_root):
    pairs = load_dataset_by_name("pku_saferlhf_10k_human500", data_root)
    assert len(pairs) == 500 and len({p.prompt_id for p in pairs}) == 291
    assert all(p.scores == {} for p in pairs)
    combos = Counter((p.winners["helpful"], p.winners["harmless"]) for p in pairs)
    assert combos == {(0, 0): 119, (0, 1): 148, (1, 0): 148, (1, 1): 85}


def test_pku_safety_pairs_keep_the_safe_response_as_winner(data_root):
    pairs = load_dataset_by_name("pku_saferlhf_safety_pairs_5k", data_root)
    raw = raw_json(data_root, "pku_saferlhf_safety_pairs_5k/pku_seferlhf_realign_dpo_5k.json")
    assert len(pairs) == 5135 and len({p.prompt_id for p in pairs}) == 930
    for pair, record in zip(pairs, raw, strict=True):
        assert pair.objectives == ("harmless",)
        assert pair.chosen_rejected("harmless") == tuple(r.strip() for r in record["response"])
    # The file always lists the safe response first; the loader must not keep that order.
    assert 0.45 < sum(p.winners["harmless"] for p in pairs) / len(pairs) < 0.55


# ---------------------------------------------------------------- HH-RLHF


def test_parse_dialogue_by_hand():
    text = "\n\nHuman: Hi there\n\nAssistant: Hello!\n\nHuman: Tell a joke.\n\nAssistant: No."
    assert hh.parse_dialogue(text) == (
        Turn("user", "Hi there"),
        Turn("assistant", "Hello!"),
        Turn("user", "Tell a joke."),
        Turn("assistant", "No."),
    )
    with pytest.raises(ValueError):
        hh.parse_dialogue("Human: no leading blank line")


def test_hh_pair_splits_shared_prefix_and_final_replies():
    record = {
        "chosen": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: good",
        "rejected": "\n\nHuman: a\n\nAssistant: b\n\nHuman: c\n\nAssistant: bad",
    }
    pair = hh.hh_pair(record, "helpful", "x", "here")
    assert pair.conversation == (Turn("user", "a"), Turn("assistant", "b"), Turn("user", "c"))
    assert pair.chosen_rejected("helpful") == ("good", "bad")
    assert sorted(pair.responses) == ["bad", "good"]
    # Different prefixes, or the same reply twice: no usable preference.
    other = dict(record, rejected="\n\nHuman: z\n\nAssistant: bad")
    assert hh.hh_pair(other, "helpful", "x", "here") is None
    assert hh.hh_pair(dict(record, rejected=record["chosen"]), "helpful", "x", "here") is None


def raw_hh(data_root, subset):
    with gzip.open(data_root / "hh_rlhf_test" / subset / "test.jsonl.gz", "rt") as f:
        return [json.loads(line) for line in f]


# (records per PROVENANCE.md, pairs kept): skipped are 5 / 9 / 2 / 3 records whose two sides
# differ before the final reply, and 0 / 2 / 2 / 32 whose chosen and rejected are identical.
HH_COUNTS = {
    "harmless-base": (2312, 2307),
    "helpful-base": (2354, 2343),
    "helpful-online": (1137, 1133),
    "helpful-rejection-sampled": (2749, 2714),
}


@pytest.mark.parametrize("subset", list(HH_COUNTS))
def test_hh_test_subsets(data_root, subset):
    records, kept = HH_COUNTS[subset]
    raw = raw_hh(data_root, subset)
    assert len(raw) == records
    identical = sum(r["chosen"] == r["rejected"] for r in raw)

    pairs = load_dataset_by_name(f"hh_rlhf_test/{subset}", data_root)
    assert len(pairs) == kept and kept <= records - identical
    objective = hh.SUBSETS[subset]
    assert all(p.objectives == (objective,) and p.source == f"hh_rlhf_test/{subset}" for p in pairs)
    assert all(p.conversation[-1].role == "user" for p in pairs)

    # Independent route: the chosen text minus the conversation is the winner's reply.
    finals = {
        r["chosen"].rsplit("\n\nAssistant:", 1)[1].strip()
        for r in raw
        if r["chosen"] != r["rejected"]
    }
    assert all(p.chosen_rejected(objective)[0] in finals for p in pairs)
    assert 0.45 < sum(p.winners[objective] for p in pairs) / kept < 0.55


def test_hh_test_order_is_deterministic(data_root):
    a = load_dataset_by_name("hh_rlhf_test/helpful-online", data_root)
    b = load_dataset_by_name("hh_rlhf_test/helpful-online", data_root)
    assert [p.responses for p in a] == [p.responses for p in b]


def test_hh_scored500(data_root):
    pairs = load_dataset_by_name("hh_rlhf_scored500", data_root)
    raw = raw_json(data_root, "hh_rlhf_scored500/dev.json")
    assert len(pairs) == 500 and len({p.prompt_id for p in pairs}) == 500
    combos = Counter(tuple(p.winners[o] for o in ("helpful", "harmless", "humor")) for p in pairs)
    assert combos == {
        (0, 1, 1): 152, (1, 0, 1): 81, (0, 1, 0): 77, (1, 0, 0): 76,
        (0, 0, 1): 37, (0, 0, 0): 27, (1, 1, 1): 25, (1, 1, 0): 25,
    }  # fmt: skip
    for pair, record in zip(pairs, raw, strict=True):
        # The prompt text is the conversation, rebuilt by hand.
        rebuilt = "".join(
            f"\n\n{'Human' if t.role == 'user' else 'Assistant'}: {t.content}"
            for t in pair.conversation
        )
        assert " ".join(rebuilt.split()) == " ".join(
            record["prompt"][: -len("\n\nAssistant:")].split()
        )
        assert pair.scores["harmless"] == (record["harm_score_0"], record["harm_score_1"])
        assert pair.scores["humor"] == (record["humor_score_0"], record["humor_score_1"])
        for objective in pair.objectives:
            a, b = pair.scores[objective]
            if a != b:
                assert (b > a) == (pair.winners[objective] == 1)


# ---------------------------------------------------------------- humor rating sets


def test_humor_rating_sets(data_root):
    colbert = load_rated_by_name("humor_colbert40k", data_root)
    assert len(colbert) == 40000 and sum(r.score for r in colbert) == 20082

    hahack = load_rated_by_name("humor_hahackathon", data_root)
    assert len(hahack) == 9000 and sum(r.score for r in hahack) == 4932 + 632
    assert Counter(r.split for r in hahack) == {"train": 8000, "dev": 1000}
    rated = load_rated_by_name("humor_hahackathon", data_root, target="humor_rating")
    assert len(rated) == 5564 and all(0 <= r.score <= 5 for r in rated)

    edits = load_rated_by_name("humor_humicroedit", data_root)
    assert len(edits) == 9652 + 2419 and all(0 <= r.score <= 3 for r in edits)
    first = edits[0]  # id 14530: "<Isis/>" edited to "twins", grades 10000
    assert (
        first.text
        == "France is ‘ hunting down its citizens who joined twins ’ without trial in Iraq"
    )
    assert first.score == pytest.approx(0.2)


# ---------------------------------------------------------------- wrong shapes


def test_every_registered_pair_set_loads_with_the_objectives_it_declares(data_root):
    for name, spec in DATASETS.items():
        pairs = load_dataset_by_name(name, data_root)
        assert pairs and {o for p in pairs for o in p.objectives} == set(spec.objectives)


def write_json(path, obj):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


SCORED_RECORD = {
    "prompt": "p", "response_0": "a", "response_1": "b", "help_score_0": 1.0,
    "help_score_1": 2.0, "harm_score_0": 3.0, "harm_score_1": 4.0,
    "better_response_id": 1, "safer_response_id": 0,
}  # fmt: skip


def test_missing_file_is_named(tmp_path):
    write_json(tmp_path / "pku_saferlhf_10k_scored" / "dev.json", [SCORED_RECORD])
    with pytest.raises(UniarmError, match="test.json"):
        load_dataset_by_name("pku_saferlhf_10k_scored", tmp_path)


def test_missing_field_is_named_with_the_file(tmp_path):
    folder = tmp_path / "pku_saferlhf_10k_scored"
    bad = {k: v for k, v in SCORED_RECORD.items() if k != "harm_score_1"}
    write_json(folder / "dev.json", [SCORED_RECORD])
    write_json(folder / "test.json", [SCORED_RECORD, bad])
    with pytest.raises(UniarmError) as info:
        load_dataset_by_name("pku_saferlhf_10k_scored", tmp_path)
    assert "test.json" in str(info.value) and "record 1" in str(info.value)
    assert "harm_score_1" in str(info.value)


def test_a_good_tiny_folder_loads(tmp_path):
    folder = tmp_path / "pku_saferlhf_10k_scored"
    write_json(folder / "dev.json", [SCORED_RECORD])
    write_json(folder / "test.json", [])
    (pair,) = load_dataset_by_name("pku_saferlhf_10k_scored", tmp_path)
    assert pair.scores == {"helpful": (1.0, 2.0), "harmless": (-3.0, -4.0)}
    assert pair.winners == {"helpful": 1, "harmless": 0}


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"prompt": "p"}', "JSON list"),
        ('["just a string"]', "expected an object"),
        (json.dumps([dict(SCORED_RECORD, safer_response_id=2)]), "safer_response_id is 2"),
        (json.dumps([dict(SCORED_RECORD, help_score_0="high")]), "expected a number"),
    ],
)
def test_bad_json_shapes(tmp_path, content, match):
    folder = tmp_path / "pku_saferlhf_10k_scored"
    folder.mkdir()
    (folder / "dev.json").write_text(content)
    (folder / "test.json").write_text("[]")
    with pytest.raises(UniarmError, match=match):
        load_dataset_by_name("pku_saferlhf_10k_scored", tmp_path)


def test_bad_hh_and_csv_shapes(tmp_path):
    for subset in hh.SUBSETS:
        path = tmp_path / "hh_rlhf_test" / subset / "test.jsonl.gz"
        path.parent.mkdir(parents=True)
        with gzip.open(path, "wt") as f:
            f.write(json.dumps({"chosen": "\n\nHuman: a\n\nAssistant: b"}) + "\n")
    with pytest.raises(UniarmError, match="rejected"):
        load_dataset_by_name("hh_rlhf_test", tmp_path)
    with pytest.raises(UniarmError, match="no subset"):
        load_dataset_by_name("hh_rlhf_test/red-team", tmp_path)

    (tmp_path / "humor_colbert40k").mkdir()
    (tmp_path / "humor_colbert40k" / "dev.csv").write_text("sentence,label\nha,True\n")
    with pytest.raises(UniarmError, match="humor"):
        load_rated_by_name("humor_colbert40k", tmp_path)


def test_unknown_names():
    with pytest.raises(UniarmError, match="pku_saferlhf_10k_scored"):
        load_dataset_by_name("pku")
    with pytest.raises(UniarmError, match="humor_colbert40k"):
        load_rated_by_name("colbert")
