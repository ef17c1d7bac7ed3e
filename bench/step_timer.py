"""Timers around the decoding engine's calls: where the time of a `generate` call goes.

Used by sweep.py (the time of a sweep and of one decoding step, split into parts) and by
merge_cost.py (the time of a call outside the models' forwards). The timers wrap what the engine
calls from outside, so the engine itself runs unchanged.
"""

from __future__ import annotations

import collections
import functools
import time


class StepTimer:
    """Seconds spent in each part of `GuidedDecoder.generate`, by wrapping what it calls.

    The wrappers sit on the decoder instance, its guides and two functions of the decoding
    loop's module (`uniarm.decoding.loop`, which looks them up at every step); a forward of more
    than one token is a prefill.
    """

    def __init__(self):
        self.seconds: dict[str, float] = collections.defaultdict(float)
        self.prefill_rows: dict[str, int] = collections.defaultdict(int)

    def wrap(self, fn, name: str, split_prefill: bool = False):
        @functools.wraps(fn)
        def timed(*args, **kwargs):
            start = time.perf_counter()
            out = fn(*args, **kwargs)
            part = name
            if split_prefill:
                prefill = args[0].shape[1] > 1
                part += "_prefill" if prefill else "_decode"
                self.prefill_rows[name] += args[0].shape[0] if prefill else 0
            self.seconds[part] += time.perf_counter() - start
            return out

        return timed

    def install(self, decoder) -> None:
        import uniarm.decoding.loop as loop

        decoder._base_step = self.wrap(decoder._base_step, "base", split_prefill=True)
        for guide in decoder.guides:
            guide.forward = self.wrap(guide.forward, "arm", split_prefill=True)
        for name in ("guided_log_probs", "choose_tokens"):
            original = getattr(loop, name)
            original = getattr(original, "__wrapped__", original)  # replace, not nest, a timer
            setattr(loop, name, self.wrap(original, name))

    def take(self, total: float) -> dict[str, float]:
        """The parts since the last call, with the rest of `total` as `other`."""
        parts = {k: round(v, 3) for k, v in sorted(self.seconds.items())}
        parts["other"] = round(total - sum(self.seconds.values()), 3)
        self.seconds.clear()
        return parts

    def take_rows(self) -> dict[str, int]:
        """How many rows each model prefilled since the last call."""
        rows = dict(sorted(self.prefill_rows.items()))
        self.prefill_rows.clear()
        return rows
