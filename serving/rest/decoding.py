"""Decoding large request bodies off the event loop that the REST and gRPC adapters share.

A JSON body of a few MiB takes tenths of a second to decode (seconds on the lenient path, for a
body holding NaN): on the loop, every other client of the process would wait that long. Bodies
from `decode_in_pool_bytes` up are decoded in a small thread pool instead, and the bodies being
decoded there hold at most `max_decoding_bytes` (a decoded body takes many times its size in
memory), beyond which a request is answered UNAVAILABLE (503) at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from beamline_serving.core.config import RestLimits
from beamline_serving.errors import Code, ServingError

T = TypeVar("T")


class DecodePool:
    """Runs `decode()` of a body on the loop if it is small, else in the pool. Used from the
    event loop's thread only, so the byte count needs no lock."""

    def __init__(self, limits: RestLimits) -> None:
        self.limits = limits
        self.decoding_bytes = 0
        self._executor: ThreadPoolExecutor | None = None  # started by the first large body

    async def run(self, size: int, decode: Callable[[], T]) -> T:
        limits = self.limits
        if size < limits.decode_in_pool_bytes:
            return decode()
        # One body is always let through, however large: the body limit already bounds it.
        if self.decoding_bytes and self.decoding_bytes + size > limits.max_decoding_bytes:
            raise ServingError(
                Code.UNAVAILABLE,
                f"The server is decoding {self.decoding_bytes} bytes of other request bodies and "
                f"this one ({size} bytes) would exceed its limit of {limits.max_decoding_bytes}; "
                "retry the request later.",
            )
        self.decoding_bytes += size
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool(), decode)
        finally:
            self.decoding_bytes -= size

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=self.limits.decode_threads, thread_name_prefix="decode"
            )
        return self._executor

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
