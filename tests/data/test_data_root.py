"""The data root: explicit path > $UNIARM_DATA > ../shared/data, and a clear error otherwise."""

from pathlib import Path

import pytest

from uniarm.data import root as root_module
from uniarm.data.root import dataset_dir, resolve_data_root
from uniarm.errors import UniarmError


def test_explicit_path_wins_over_the_environment(tmp_path, monkeypatch):
    explicit, env = tmp_path / "a", tmp_path / "b"
    explicit.mkdir()
    env.mkdir()
    monkeypatch.setenv("UNIARM_DATA", str(env))
    assert resolve_data_root(explicit) == explicit
    assert resolve_data_root(str(explicit)) == explicit
    assert resolve_data_root() == env


def test_default_is_shared_data_beside_the_checkout(tmp_path, monkeypatch):
    checkout = tmp_path / "main"
    data = tmp_path / "shared" / "data"
    checkout.mkdir()
    data.mkdir(parents=True)
    monkeypatch.delenv("UNIARM_DATA", raising=False)
    monkeypatch.setattr(root_module, "REPO_ROOT", checkout)
    monkeypatch.chdir(tmp_path)  # cwd/../shared/data does not exist: only the repo route works
    assert resolve_data_root() == data


def test_default_also_tries_beside_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    (tmp_path / "shared" / "data").mkdir(parents=True)
    monkeypatch.delenv("UNIARM_DATA", raising=False)
    monkeypatch.setattr(root_module, "REPO_ROOT", tmp_path / "elsewhere" / "repo")
    monkeypatch.chdir(tmp_path / "work")
    assert resolve_data_root().resolve() == (tmp_path / "shared" / "data").resolve()


def test_missing_root_names_every_path_tried_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.delenv("UNIARM_DATA", raising=False)
    monkeypatch.setattr(root_module, "REPO_ROOT", tmp_path / "repo")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UniarmError) as info:
        resolve_data_root()
    message = str(info.value)
    assert str(tmp_path / "shared" / "data") in message
    assert str(Path.cwd().parent / "shared" / "data") in message
    assert "--data-root" in message and "UNIARM_DATA" in message


def test_a_wrong_explicit_or_env_path_is_not_silently_replaced(tmp_path, monkeypatch, data_root):
    # Even though the default location exists, a typo in the given path is an error.
    monkeypatch.setenv("UNIARM_DATA", str(tmp_path / "typo"))
    with pytest.raises(UniarmError, match="typo"):
        resolve_data_root()
    with pytest.raises(UniarmError, match="nothere"):
        resolve_data_root(tmp_path / "nothere")


def test_missing_dataset_folder_is_named(tmp_path):
    with pytest.raises(UniarmError, match="hh_rlhf_test"):
        dataset_dir(tmp_path, "hh_rlhf_test")
