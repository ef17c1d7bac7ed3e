"""Atomic writes leave files with the modes a plain `open()` would give them."""

import os
import stat

import pytest
import torch
from safetensors.torch import save_file

from conftest import make_tiny_llama
from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.io import _umask, atomic_dir, atomic_path, write_json, write_text


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request):
    before = os.umask(request.param)
    yield request.param
    os.umask(before)


def test_umask_is_read_without_changing_it(umask):
    assert _umask() == umask and _umask() == umask


def test_atomic_files_get_the_mode_of_a_plain_file(tmp_path, umask):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")  # the independent route: open() applies 0666 & ~umask
    assert mode(plain) == 0o666 & ~umask

    write_text(tmp_path / "a.txt", "x")
    write_json(tmp_path / "b.json", {"x": 1})
    with atomic_path(tmp_path / "c.safetensors") as tmp:
        save_file({"x": torch.zeros(2)}, tmp)  # safetensors stages through a 0600 temp file
    for name in ("a.txt", "b.json", "c.safetensors"):
        assert mode(tmp_path / name) == mode(plain), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


def test_files_in_an_atomic_folder_get_the_usual_modes(tmp_path, umask):
    with atomic_dir(tmp_path / "ckpt") as staging:
        save_file({"x": torch.zeros(2)}, staging / "weights.safetensors")
        (staging / "sub").mkdir()
        (staging / "sub" / "notes.txt").write_text("x")
        (staging / "run.sh").write_text("#!/bin/sh\n")
        os.chmod(staging / "run.sh", 0o700)
    folder = tmp_path / "ckpt"
    assert mode(folder) == mode(folder / "sub") == 0o777 & ~umask
    assert mode(folder / "weights.safetensors") == mode(folder / "sub" / "notes.txt")
    assert mode(folder / "weights.safetensors") == 0o666 & ~umask
    assert mode(folder / "run.sh") == 0o700 | (0o666 & ~umask)  # widened, never narrowed


def test_a_saved_arm_is_readable_like_any_file(tmp_path, tokenizer):
    objectives = ("helpful", "harmless")
    arm = PreferenceARM(make_tiny_llama(tokenizer), tokenizer, objectives, AdapterConfig())
    before = os.umask(0o022)
    try:
        arm.save(tmp_path / "arm")
    finally:
        os.umask(before)
    modes = {p.name: mode(p) for p in (tmp_path / "arm").iterdir()}
    assert modes["adapter.safetensors"] == 0o644 and set(modes.values()) == {0o644}
