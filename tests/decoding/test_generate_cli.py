"""`uniarm generate` end to end on tiny model folders."""

import json

import pytest
import torch
from decoding_helpers import OBJECTIVES, peaked_llama

from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.cli import main
from uniarm.decoding import DecodingConfig, GuidedDecoder, load_guides
from uniarm.models import load_model


@pytest.fixture(scope="module")
def folders(tmp_path_factory, tokenizer):
    root = tmp_path_factory.mktemp("cli")
    for name, seed in (("base", 0), ("arm-base", 4)):
        peaked_llama(tokenizer, seed=seed).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    model, arm_tokenizer = load_model(str(root / "arm-base"))
    arm = PreferenceARM(model, arm_tokenizer, OBJECTIVES, AdapterConfig())
    with torch.no_grad():
        for param in arm.trainable_parameters():
            param.normal_(std=0.5)
    arm.save(root / "arm")
    (root / "prompts.jsonl").write_text(
        '{"id": "a", "prompt": "Hello there"}\n'
        '{"id": "b", "messages": [{"role": "user", "content": "What is 2 + 2?"}]}\n'
    )
    return root


def run_cli(folders, *extra):
    args = ["generate", "--base", str(folders / "base"), "--max-new-tokens", "5", *extra]
    return main([str(a) for a in args])


def test_sweep_to_jsonl_matches_the_api(folders, tmp_path, capsys):
    out = tmp_path / "replies.jsonl"
    prefs = ["helpful=0.3,harmless=0.7", "1,0"]
    code = run_cli(
        folders, "--arm", folders / "arm", "--preference", *prefs,
        "--prompts-file", folders / "prompts.jsonl", "--output", out,
    )  # fmt: skip
    assert code == 0 and "4 responses" in capsys.readouterr().out
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "a", "b", "b"]
    assert rows[0]["preference"] == {"helpful": 0.3, "harmless": 0.7}
    assert rows[1]["preference"] == {"helpful": 1.0, "harmless": 0.0}
    assert rows[2]["prompt"] == [{"role": "user", "content": "What is 2 + 2?"}]

    base, tokenizer = load_model(str(folders / "base"))
    decoder = GuidedDecoder(
        base, tokenizer, load_guides(folders / "arm"), DecodingConfig(max_new_tokens=5)
    )
    expected = decoder.generate(["Hello there"], [[0.3, 0.7]])[0]
    assert rows[0]["response"] == expected.text
    assert rows[0]["new_tokens"] == len(expected.token_ids)

    # an existing output is never overwritten silently
    before = out.read_text()
    assert run_cli(folders, "--prompt", "hi", "--output", out) == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == before
    assert run_cli(folders, "--prompt", "hi", "--output", out, "--overwrite") == 0
    assert len(out.read_text().splitlines()) == 1


def test_base_only_prints_responses(folders, capsys):
    assert run_cli(folders, "--prompt", "Hello there", "Tell me more") == 0
    out = capsys.readouterr().out
    assert out.count("### [base]") == 2 and "Tell me more" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prompt", "hi", "--preference", "1,0"], "no reward model"),
        (["--prompt", "hi", "--arm", "ARM"], "needs a preference"),
        (["--prompt", "hi", "--arm", "ARM", "--preference", "helpful=2"], "sums to"),
        ([], "no prompt"),
        (["--prompt", "hi", "--max-new-tokens", "0"], "max_new_tokens"),
    ],
)
def test_user_errors_exit_2(folders, capsys, extra, message):
    extra = [folders / "arm" if a == "ARM" else a for a in extra]
    assert run_cli(folders, *extra) == 2
    assert message in capsys.readouterr().err
