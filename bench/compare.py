"""The paper comparison on this machine: `uniarm compare`, writing into bench/results.

    OMP_NUM_THREADS=1 .venv/bin/python bench/compare.py --task safety --scale tiny
    OMP_NUM_THREADS=1 .venv/bin/python bench/compare.py --task safety --scale small
    OMP_NUM_THREADS=1 .venv/bin/python bench/compare.py --task assistant --scale small

Every flag of `uniarm compare` works here (see `--help`); the results default to
bench/results/compare-<task>.json, .md and .png (compare-<task>-<scale>.* for scales other
than small). Run the same command again to resume or reuse the cached stages.
"""

from __future__ import annotations

import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose")


def main(argv: list[str] | None = None) -> int:
    from uniarm.cli import main as uniarm_main

    argv = list(sys.argv[1:] if argv is None else argv)
    flags = [a for a in argv if a in GLOBAL_FLAGS]
    rest = [a for a in argv if a not in GLOBAL_FLAGS]
    if "--results-dir" not in rest:
        rest += ["--results-dir", str(RESULTS)]
    return uniarm_main([*flags, "compare", *rest])


if __name__ == "__main__":
    sys.exit(main())
