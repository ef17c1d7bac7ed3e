"""The stage manifest of a comparison study: what ran, how long it took, what it produced.

    <study>/manifest.json
        {"format": "uniarm-compare/1", "identity": {...the settings that decide the results},
         "stages": {"train/uniarm-seed0": {"status": "done", "seconds": 812.4, "attempts": 1,
                                           "result": {"path": ..., ...}}, ...}}

A stage that finished is reused as long as the files it names still exist; one that was
interrupted runs again, and the work under it resumes by itself (training runs restart from
their last checkpoint, sweeps keep the replies already written). `seconds` adds up the time of
every attempt, an interrupted or failed one included (a process killed outright, SIGKILL,
records none: its time is missing from `seconds`, its attempt is counted).
"""

from __future__ import annotations

import datetime
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from uniarm.errors import UniarmError
from uniarm.io import write_json

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "uniarm-compare/1"


def _now() -> str:
    return datetime.datetime.now().isoformat(timespec="seconds")


class StageManifest:
    """The manifest file of one study folder; one study identity per folder."""

    def __init__(self, folder: str | Path, identity: dict[str, Any]):
        self.folder = Path(folder)
        self.path = self.folder / "manifest.json"
        self.identity = json.loads(json.dumps(identity))  # tuples as lists, as once saved
        self.stages: dict[str, dict] = {}
        if self.path.is_file():
            found = json.loads(self.path.read_text())
            if found.get("format") != MANIFEST_FORMAT:
                raise UniarmError(f"{self.path} is not a comparison study manifest")
            if found.get("identity") != self.identity:
                old = found.get("identity", {})
                changed = sorted(
                    k for k in set(old) | set(self.identity) if old.get(k) != self.identity.get(k)
                )
                raise UniarmError(
                    f"{self.folder} holds a study of other settings (differs in: "
                    f"{', '.join(changed)})",
                    "pick another --output, or delete that folder to start again",
                )
            self.stages = found.get("stages", {})
        elif self.folder.is_dir() and any(self.folder.iterdir()):
            raise UniarmError(
                f"{self.folder} is not empty and holds no study manifest",
                "pick another --output (an empty or new folder)",
            )

    def save(self) -> None:
        write_json(
            self.path,
            {"format": MANIFEST_FORMAT, "identity": self.identity, "stages": self.stages},
        )

    def done(self, name: str) -> dict | None:
        """The record of a finished stage whose outputs are still there, else None."""
        record = self.stages.get(name)
        if not record or record.get("status") != "done":
            return None
        path = record.get("result", {}).get("path")
        if path is not None and not Path(path).exists():
            log.warning("stage %s: its output %s is gone; running it again", name, path)
            return None
        return record

    def invalidate(self, name: str, reason: str) -> None:
        """Mark a finished stage stale: the next `run` does it again (its work resumes)."""
        if name in self.stages:
            log.warning("stage %s: %s; running it again", name, reason)
            self.stages[name]["status"] = "stale"
            self.save()

    def run(self, name: str, work: Callable[[], dict]) -> dict:
        """Run stage `name` unless it finished before; returns its record.

        `work()` does the stage and returns a JSON-ready dict (with `path` when the stage
        writes a folder or file), stored as the record's `result`.
        """
        record = self.done(name)
        if record is not None:
            log.info("stage %s: done before (%.0f s), reused", name, record["seconds"])
            return record
        self.folder.mkdir(parents=True, exist_ok=True)
        record = self.stages.setdefault(name, {"seconds": 0.0, "attempts": 0})
        record.update(status="running", started=_now(), attempts=record["attempts"] + 1)
        self.save()
        log.info("stage %s: running (attempt %d)", name, record["attempts"])

        start = time.perf_counter()
        try:
            result = work()
        except BaseException:  # KeyboardInterrupt included: keep the time this attempt spent
            record.update(
                status="interrupted", seconds=record["seconds"] + time.perf_counter() - start
            )
            self.save()
            raise
        seconds = time.perf_counter() - start
        record.update(
            status="done",
            finished=_now(),
            seconds=record["seconds"] + seconds,
            last_seconds=seconds,
            result=result,
        )
        self.save()
        log.info("stage %s: done in %.0f s", name, seconds)
        return record
