"""An HttpServer (serving/rest/http1.py) running on its own event loop thread, for tests."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator

from beamline_serving.rest.http1 import HttpServer


@contextlib.contextmanager
def listening(server: HttpServer) -> Iterator[int]:
    """Serves `server` on a free loopback port (yielded) until the block ends."""
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder = {}

    async def start():
        await server.listen("127.0.0.1", 0)
        holder["port"] = server._server.sockets[0].getsockname()[1]
        ready.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(start()), loop.run_forever()))
    thread.daemon = True
    thread.start()
    assert ready.wait(10)
    try:
        yield holder["port"]
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
