"""Atomic file writes: a reader never sees a half-written file, a crash never leaves one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _umask() -> int:
    """The process umask, read without changing it where Linux allows (`os.umask` sets it)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0)  # NOTE: for an instant, files other threads create get mode 0666
    os.umask(mask)
    return mask


def _usual_modes(folder: Path) -> None:
    """Give every file under `folder` at least the mode a plain `open()` gives (0666 & ~umask).

    Writers that stage through temporary files (safetensors, hence peft and transformers)
    leave mode 0600, which other users of a shared run folder could not read.
    """
    wanted = 0o666 & ~_umask()
    for root, _, names in os.walk(folder):
        for name in names:
            file = Path(root) / name
            if file.is_symlink():
                continue
            mode = stat.S_IMODE(file.stat().st_mode)
            if mode | wanted != mode:
                os.chmod(file, mode | wanted)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it onto `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp made it 0600 (and so does a writer staging like it)
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder beside `path`; swap it in for `path` if the block succeeds.

    The swap is two renames (old folder to `.NAME.old`, staging to NAME), then the old one is
    removed; a reader finds the `.old` folder (`old_dir`) if a kill fell between the renames. The
    files in it get the usual modes (see `_usual_modes`), the folder 0777 & ~umask.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield staging
        _usual_modes(staging)
        os.chmod(staging, 0o777 & ~_umask())  # mkdtemp made it 0700
        old = old_dir(path)
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            path.rename(old)
        staging.rename(path)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def old_dir(path: str | os.PathLike) -> Path:
    """Where `atomic_dir` keeps the previous folder during its swap."""
    path = Path(path)
    return path.with_name(f".{path.name}.old")


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSONL file, skipping a torn last line (a writer killed mid-line)."""
    rows = []
    with open(path) as f:
        lines = f.read().split("\n")
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if i >= len(lines) - 2:  # only the final line may be torn
                break
            raise
    return rows


def append_jsonl(path: str | os.PathLike, rows: list[dict]) -> None:
    """Append rows and fsync, so that what was appended survives a kill."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())
