"""Which streams a connection carries: in its URL when few, else SUBSCRIBE, and live changes.

A combined-stream URL names its streams (`/stream?streams=a@trade/b@trade`), but the server has
refused very long URLs (about 8-16 KB, protocol notes §2), and a listing that changes while
the run goes on (`ingest --all`) needs streams added and dropped on a live connection. So a
connection carries its first `URL_STREAMS_MAX` streams in its URL and asks for the rest with
`SUBSCRIBE` messages of at most `BATCH` streams; later changes are `SUBSCRIBE`/`UNSUBSCRIBE`.
Binance closes a connection that sends more than 5 messages a second (pongs included), so
requests go out at most `PER_SECOND` a second, from their own task: the reader never waits.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterable

import aiohttp

from binprice.exchange.protocol import combined_stream_path, control_request, stream_name

#: Streams named in the URL itself; the rest are subscribed.
URL_STREAMS_MAX = 200
#: Streams per SUBSCRIBE/UNSUBSCRIBE request.
BATCH = 200
#: Requests per second, under Binance's 5 incoming messages per second (pongs count too).
PER_SECOND = 3

_ids = itertools.count(1)


def connection_path(
    symbols: list[str], name: Callable[[str], str] = stream_name
) -> tuple[str, list[str]]:
    """The path to connect to, and the symbols still to subscribe once connected; `name` is
    a symbol's stream (`@trade`, or `protocol.agg_stream_name`)."""
    named, rest = symbols[:URL_STREAMS_MAX], symbols[URL_STREAMS_MAX:]
    return (combined_stream_path(named, name) if named else "/stream"), rest


class Outbox:
    """Control requests waiting to go out on one connection, sent at a safe pace."""

    def __init__(self, name: Callable[[str], str] = stream_name) -> None:
        #: A symbol's stream name (`@trade`, or `@aggTrade` with `protocol.agg_stream_name`).
        self._name = name
        self._pending: deque[tuple[str, list[str]]] = deque()
        self._ready = asyncio.Event()
        self.idle = asyncio.Event()
        self.idle.set()

    def subscribe(self, symbols: Iterable[str]) -> None:
        self._queue("SUBSCRIBE", list(symbols))

    def unsubscribe(self, symbols: Iterable[str]) -> None:
        self._queue("UNSUBSCRIBE", list(symbols))

    def _queue(self, method: str, symbols: list[str]) -> None:
        for start in range(0, len(symbols), BATCH):
            self._pending.append((method, symbols[start : start + BATCH]))
        if self._pending:
            self.idle.clear()
            self._ready.set()

    async def send_forever(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """Send what is queued, at most PER_SECOND requests a second, until cancelled."""
        while True:
            if not self._pending:
                self.idle.set()
                self._ready.clear()
                await self._ready.wait()
                continue
            method, symbols = self._pending.popleft()
            streams = [self._name(s) for s in symbols]
            try:
                await ws.send_str(control_request(method, streams, next(_ids)).decode())
            except (aiohttp.ClientError, ConnectionError):
                return  # the connection is going; its reader ends it
            await asyncio.sleep(1 / PER_SECOND)
