"""`uniarm generate` end to end on tiny model folders."""

import dataclasses
import json

import pytest
import torch
from decoding_helpers import OBJECTIVES, peaked_llama

from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.cli import main
from uniarm.decoding import DecodingConfig, GuidedDecoder, load_guides
from uniarm.decoding.config import GenerateConfig
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


def run_cli(folders, *extra, base_flag="--base-model"):
    args = ["generate", base_flag, str(folders / "base"), "--max-new-tokens", "5", *extra]
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
    assert rows[0]["base_model"] == str(folders / "base")

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
    assert run_cli(folders, "--prompt", "hi", "--output", out, "--overwrite", "false") == 2
    assert "already exists" in capsys.readouterr().err and out.read_text() == before
    assert run_cli(folders, "--prompt", "hi", "--output", out, "--overwrite") == 0
    assert len(out.read_text().splitlines()) == 1


def test_base_only_prints_responses(folders, capsys):
    # --base, the old spelling of --base-model, is still accepted
    assert run_cli(folders, "--prompt", "Hello there", "Tell me more", base_flag="--base") == 0
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


def test_a_recipe_takes_decoding_keys_and_a_misspelt_one_lists_them_all(folders, tmp_path, capsys):
    recipe, out = tmp_path / "r.yaml", tmp_path / "replies.jsonl"
    recipe.write_text(f"generate:\n  base: {folders / 'base'}\n  max_new_tokens: 2\n")
    assert (
        main(["generate", "--recipe", str(recipe), "--prompt", "Hello", "--output", str(out)]) == 0
    )
    (row,) = [json.loads(line) for line in out.read_text().splitlines()]
    base, tokenizer = load_model(str(folders / "base"))
    expected = GuidedDecoder(base, tokenizer, [], DecodingConfig(max_new_tokens=2)).generate(
        ["Hello"]
    )[0]
    assert row["response"] == expected.text and row["new_tokens"] == len(expected.token_ids) == 2

    recipe.write_text("generate:\n  tmperature: 0.5\n")
    assert run_cli(folders, "--recipe", recipe, "--prompt", "hi") == 2
    err = capsys.readouterr().err
    assert "unknown setting(s): tmperature" in err
    listed = set(err.split("use one of: ")[1].strip().split(", "))
    fields = {f.name for cls in (GenerateConfig, DecodingConfig) for f in dataclasses.fields(cls)}
    assert listed == fields and {"temperature", "top_p", "base_model", "prompts_file"} <= listed


def test_a_flat_recipe_is_read_whole_with_base_model_or_its_older_name(folders, tmp_path, capsys):
    base, tokenizer = load_model(str(folders / "base"))
    expected = GuidedDecoder(base, tokenizer, [], DecodingConfig(max_new_tokens=3)).generate(
        ["Hello"]
    )[0]
    recipe = tmp_path / "flat.yaml"
    for key in ("base_model", "base"):
        out = tmp_path / f"{key}.jsonl"
        recipe.write_text(f"{key}: {folders / 'base'}\nmax_new_tokens: 3\n")
        args = ["generate", "--recipe", str(recipe), "--prompt", "Hello", "--output", str(out)]
        assert main(args) == 0
        (row,) = [json.loads(line) for line in out.read_text().splitlines()]
        assert row["response"] == expected.text and row["new_tokens"] == 3
        assert row["base_model"] == str(folders / "base")


@pytest.mark.parametrize(
    "text, message",
    [
        ("train:\n  lr: 0.01\nevaluate:\n  num_prompts: 2\n", "no generate: section"),
        ("base: a\nbase_model: b\n", "both base_model and base"),
        ("epochs: 2\nlr: 0.01\n", "unknown setting(s): epochs, lr"),  # a train recipe
    ],
)
def test_a_recipe_for_another_command_is_refused_before_loading(
    folders, tmp_path, capsys, no_model_loads, text, message
):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(text)
    assert run_cli(folders, "--recipe", recipe, "--prompt", "hi") == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, text", [("empty.txt", ""), ("blank.txt", "\n  \n"), ("e.jsonl", "")]
)
@pytest.mark.parametrize("output", [True, False])
def test_an_empty_prompts_file_is_refused_before_loading_and_writes_nothing(
    tmp_path, capsys, no_model_loads, name, text, output
):
    prompts, out = tmp_path / name, tmp_path / "e.jsonl.out"
    prompts.write_text(text)
    args = ["generate", "--prompts-file", str(prompts)] + (["--output", str(out)] if output else [])
    assert main(args) == 2
    captured = capsys.readouterr()
    assert "holds no prompt" in captured.err and "--prompt TEXT" in captured.err
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--arm", "ARM", "--preference", "funny=1"], "unknown objective 'funny'"),
        (["--arm", "GENARM", "--preference", "helpful=0.5,funny=0.5"], "unknown objective"),
        (["--arm", "ARM", "--preference", "helpful=2"], "sums to"),
        (["--arm", "ARM"], "needs a preference"),
        (["--arm", "ARM", "--preference", "0.3", "0.7"], "write e.g. --preference 0.3,0.7"),
        (["--arm", "ARM", "--preference", "1,0", "1"], "commas separate the weights of one"),
        (["--arm", "MISSING", "--preference", "1,0"], "checkpoint not found"),
        (["--preference", "1,0"], "no reward model"),
        (["--device", "nodevice"], "not a device"),
        (["--output", "EXISTING"], "already exists"),
    ],
)
def test_argument_errors_come_before_any_model_loads(
    folders, tmp_path, capsys, no_model_loads, extra, message
):
    genarm = tmp_path / "genarm"  # its manifest alone names the objectives
    genarm.mkdir()
    (genarm / "genarm.json").write_text(json.dumps({"method": "genarm", "objectives": OBJECTIVES}))
    (tmp_path / "existing.jsonl").write_text("")
    named = {
        "ARM": folders / "arm",
        "GENARM": genarm,
        "MISSING": tmp_path / "nothing",
        "EXISTING": tmp_path / "existing.jsonl",
    }
    assert run_cli(folders, "--prompt", "hi", *[named.get(a, a) for a in extra]) == 2
    assert message in capsys.readouterr().err
