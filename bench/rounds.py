"""Repeated runs on a loaded machine: the methods take turns, the fastest run is kept.

Other jobs load a shared machine in bursts. Running the methods in turn spreads a burst over
all of them instead of one, and the fastest of a setting's runs is the least disturbed one.
Memory peaks go the other way: they are kept at their highest over all runs, since a peak does
not shrink because a run was fast. decode.py, train.py and sweep.py share these rules, so they
live here and not in each script.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence


def take_turns(methods: Sequence[str], repeats: int, run: Callable[[str], dict]) -> dict[str, list]:
    """`run(method)` for every method, `repeats` times; each time the order is rotated by one,
    so that no method always runs first. Returns each method's results in the order they ran."""
    results: dict[str, list[dict]] = {m: [] for m in methods}
    for repeat in range(repeats):
        shift = repeat % len(methods)
        for method in [*methods[shift:], *methods[:shift]]:
            results[method].append(run(method))
    return results


def highest(values: Iterable[float | None]) -> float | None:
    """The largest value that is not None; None when all are (a kernel without VmHWM reset)."""
    known = [v for v in values if v is not None]
    return max(known) if known else None


def highest_memory(runs: Sequence[dict], fields: Sequence[str]) -> dict:
    """Each memory field of `runs` at its highest over them."""
    return {field: highest(run[field] for run in runs) for field in fields}


def best_run(runs: Sequence[dict], speed: Callable[[dict], float], memory=()) -> dict:
    """A copy of the run of highest `speed` (the first on a tie), with each field of `memory` at
    its highest over all the runs."""
    return dict(max(runs, key=speed)) | highest_memory(runs, memory)
