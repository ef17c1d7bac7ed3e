"""Humor rating sets: single texts with a human label, for fitting and checking humor oracles.

These are not preference pairs. Each loader returns `RatedText` records whose `score` is the
source's own label on its own scale (named in each loader's docstring). Unlabelled files
(HaHackathon test1000.csv, Humicroedit task1/test.csv) are not read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from uniarm.data.files import FIX, read_csv_records, require_file
from uniarm.data.root import dataset_dir
from uniarm.errors import UniarmError

Root = str | os.PathLike | None

HAHACKATHON_TARGETS = ("is_humor", "humor_rating", "offense_rating")
EDIT_SLOT = re.compile(r"<[^<>]*/>")


@dataclass(frozen=True)
class RatedText:
    """A text and one human score of it (higher = more of the rated quality)."""

    text: str
    score: float
    source: str
    split: str = ""


def _float(row: dict, column: str, where: str) -> float:
    try:
        return float(row[column])
    except (TypeError, ValueError) as exc:
        raise UniarmError(f"{where}: {column} is {row[column]!r}, expected a number", FIX) from exc


def load_humor_colbert40k(root: Root = None) -> list[RatedText]:
    """40,000 short texts; score 1.0 (humor True) or 0.0 (False)."""
    name = "humor_colbert40k"
    path = require_file(dataset_dir(root, name), "dev.csv")
    records = []
    for i, row in enumerate(read_csv_records(path, ("text", "humor"))):
        label = row["humor"].strip().lower()
        if label not in ("true", "false"):
            raise UniarmError(f"{path} row {i}: humor is {row['humor']!r}, expected True/False")
        records.append(RatedText(row["text"].strip(), float(label == "true"), name, "dev"))
    return records


def load_humor_hahackathon(root: Root = None, target: str = "is_humor") -> list[RatedText]:
    """SemEval-2021 Task 7 train8000 + dev1000, scored by `target`.

    Targets: `is_humor` (0/1, 9,000 texts), `humor_rating` (mean 0-5, only the 5,564 texts
    judged humorous have one; the others are left out, not set to 0), `offense_rating` (mean
    0-5, higher = more offensive, 9,000 texts).
    """
    if target not in HAHACKATHON_TARGETS:
        raise UniarmError(
            f"unknown HaHackathon target {target!r}", f"use one of {HAHACKATHON_TARGETS}"
        )
    name = "humor_hahackathon"
    folder = dataset_dir(root, name)
    records = []
    for file, split in (("train8000.csv", "train"), ("dev1000.csv", "dev")):
        path = require_file(folder, file)
        for i, row in enumerate(read_csv_records(path, ("text",) + HAHACKATHON_TARGETS)):
            if target == "humor_rating" and not row[target].strip():
                continue
            score = _float(row, target, f"{path} row {i}")
            records.append(RatedText(row["text"].strip(), score, name, split))
    return records


def load_humor_humicroedit(root: Root = None) -> list[RatedText]:
    """SemEval-2020 Task 7 task1 train + dev: edited headlines, mean funniness grade 0-3.

    The text is the headline with its marked word (`<word/>`) replaced by the edit.
    """
    # TODO: task2 ("which edit is funnier", human pairs of headlines) is not loaded yet.
    name = "humor_humicroedit"
    folder = dataset_dir(root, name)
    records = []
    for split in ("train", "dev"):
        path = require_file(folder, f"task1/{split}.csv")
        for i, row in enumerate(read_csv_records(path, ("original", "edit", "meanGrade"))):
            where = f"{path} row {i}"
            pieces = EDIT_SLOT.split(row["original"])
            if len(pieces) != 2:
                raise UniarmError(f"{where}: original has no single <word/> slot to edit", FIX)
            headline = pieces[0] + row["edit"].strip() + pieces[1]
            records.append(
                RatedText(headline.strip(), _float(row, "meanGrade", where), name, split)
            )
    return records
