"""Where the shared data folders live: an explicit path, $UNIARM_DATA, or ../shared/data.

The data files are never part of the checkout. They sit in a `shared/data` folder beside it
(see the data README), so the default is looked up relative to the repository and to the
working directory; an explicit `--data-root` or `UNIARM_DATA` always wins.
"""

from __future__ import annotations

import os
from pathlib import Path

from uniarm.errors import UniarmError

ENV_VAR = "UNIARM_DATA"

# src/uniarm/data/root.py -> the repository root is three folders above this file's folder.
REPO_ROOT = Path(__file__).resolve().parents[3]


def default_candidates() -> list[Path]:
    """The places tried when neither a path nor $UNIARM_DATA is given, in order."""
    candidates = [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    unique: list[Path] = []
    for path in candidates:
        if path.resolve() not in [p.resolve() for p in unique]:
            unique.append(path)
    return unique


def resolve_data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root: `explicit` > $UNIARM_DATA > ../shared/data beside the checkout or cwd.

    A path given explicitly or by the environment is used as is (no fallback), so that a typo
    is reported instead of silently reading another folder.
    """
    if explicit is not None:
        tried, origin = [Path(explicit).expanduser()], "--data-root"
    elif os.environ.get(ENV_VAR):
        tried, origin = [Path(os.environ[ENV_VAR]).expanduser()], f"${ENV_VAR}"
    else:
        tried, origin = default_candidates(), "the default locations"

    for path in tried:
        if path.is_dir():
            return path
    raise UniarmError(
        f"no data folder found (from {origin}); tried: {', '.join(str(p) for p in tried)}",
        f"pass --data-root PATH or set {ENV_VAR}=PATH to the folder holding "
        "pku_saferlhf_10k_scored/, hh_rlhf_test/, ...",
    )


def dataset_dir(root: str | os.PathLike | None, name: str) -> Path:
    """The folder of one data set under the data root; it must exist."""
    base = resolve_data_root(root)
    folder = base / name
    if not folder.is_dir():
        raise UniarmError(
            f"the data set folder {folder} is missing",
            f"check that --data-root (or ${ENV_VAR}) points at the shared data folder; "
            f"it should contain {name}/",
        )
    return folder
