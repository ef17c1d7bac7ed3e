"""Gather concurrent requests into decoder batches, each row with its own preference.

One worker owns the decoder: requests wait at most `max_wait_s` for company, then go through
one `GuidedDecoder.generate` call of up to `max_batch` rows. Rows of one call share their
decoding settings (length, sampling), so requests are grouped by those; their preferences may
all differ, which the decoder's per-row conditioning serves without reloading anything. A
batch of one preference runs the merged ARM, and the merge is kept for the next batch of that
preference; `stop` gives the ARM back unmerged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from uniarm.decoding import DecodingConfig, Generation, GuidedDecoder

log = logging.getLogger(__name__)


@dataclass
class Request:
    conversation: tuple
    preference: tuple[float, ...] | None
    config: DecodingConfig
    seed: int
    future: asyncio.Future = field(repr=False)
    received: float = field(default_factory=time.perf_counter)


def _settings_key(config: DecodingConfig) -> tuple:
    return (
        config.max_new_tokens,
        config.do_sample,
        config.temperature,
        config.top_k,
        config.top_p,
        tuple(config.stop),
        config.beta,
    )


class RequestBatcher:
    """Runs a decoder for many callers at once (see the module docstring)."""

    def __init__(self, decoder: GuidedDecoder, max_batch: int = 16, max_wait_s: float = 0.02):
        self.decoder = decoder
        self.max_batch = max_batch
        self.max_wait_s = max_wait_s
        self._queue: asyncio.Queue[Request] | None = None
        self._worker: asyncio.Task | None = None
        # One thread: the decoder (and an ARM it merges) is never used by two calls at once.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decoder")
        self.batches_run = 0
        self.rows_run = 0

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        self._executor.shutdown(wait=True)
        self.decoder.release()  # a merge kept for the last batch's preference: undone

    async def submit(
        self, conversation, preference, config: DecodingConfig, seed: int = 0
    ) -> Generation:
        if self._queue is None:
            raise RuntimeError("the batcher is not started")
        future = asyncio.get_running_loop().create_future()
        await self._queue.put(Request(conversation, preference, config, seed, future))
        return await future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            pending = [await self._queue.get()]
            deadline = loop.time() + self.max_wait_s
            while len(pending) < self.max_batch:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    pending.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            groups: dict[tuple, list[Request]] = defaultdict(list)
            for request in pending:
                groups[_settings_key(request.config)].append(request)
            for group in groups.values():
                await self._decode(loop, group)

    async def _decode(self, loop, group: list[Request]) -> None:
        guided = bool(self.decoder.guides)
        prefs = [r.preference for r in group] if guided else None
        try:
            results = await loop.run_in_executor(
                self._executor,
                lambda: self.decoder.generate(
                    [r.conversation for r in group],
                    prefs,
                    config=group[0].config,
                    seeds=[r.seed for r in group],
                ),
            )
        except Exception as exc:  # the callers get the error; the worker goes on
            for r in group:
                if not r.future.done():
                    r.future.set_exception(exc)
            return
        self.batches_run += 1
        self.rows_run += len(group)
        for r, result in zip(group, results, strict=True):
            if not r.future.done():
                r.future.set_result(result)
