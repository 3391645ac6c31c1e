"""One stream connection of the test exchange: subscriptions, control messages, keepalive.

Trade frames are pushed in by the exchange's producer through :meth:`StreamConnection.deliver`,
synchronously, so a connection gets every trade produced after it subscribed and nothing before
(Binance never replays). Frames are written straight to the transport, many per write: that
is what makes full-speed runs fast, and it is safe because every write is a whole frame and
all writes happen on the event loop thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import WSCloseCode, WSMsgType, web

from binprice.symbols import MAX_STREAMS_PER_CONNECTION
from binprice.testing.control import (
    BAD_VALUE_TYPE,
    INVALID_REQUEST,
    INVALID_STREAM,
    PROPERTIES,
    PROPERTY_NAME,
    STREAM_NAME,
    TOO_MANY_PARAMETERS,
    UNKNOWN_PROPERTY,
    ControlError,
    Request,
    parse_request,
)
from binprice.testing.faults import JUNK_FRAMES, Faults, junk_frame
from binprice.testing.frames import Deflater, Outgoing, server_shutdown_payload, ws_text_frame

#: Window over which incoming messages are counted against ``max_incoming_per_second``.
RATE_WINDOW_SECONDS = 1.0
_JUNK_KINDS = tuple(JUNK_FRAMES)


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Binance's per-connection rules (§5 of the protocol notes); tests shorten the times."""

    ping_interval: float = 20.0
    pong_timeout: float = 60.0
    max_incoming_per_second: int = 5
    max_streams: int = MAX_STREAMS_PER_CONNECTION
    #: Binance was observed to drop a client about 1 s after rejecting an invalid stream.
    invalid_stream_close_delay: float | None = 1.0


class StreamConnection:
    """Server side of one ``/stream`` or ``/ws`` connection."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        transport: asyncio.Transport,
        streams: Sequence[str],
        *,
        combined: bool,
        microseconds: bool = False,
        deflater: Deflater | None = None,
        limits: ConnectionLimits,
        faults: Faults,
        rng: random.Random,
        on_change: Callable[[], None],
    ) -> None:
        """``streams`` come from the URL: names Binance would not know just produce nothing."""
        self.ws = ws
        self.combined = combined
        self.microseconds = microseconds
        self.subscriptions: dict[str, None] = dict.fromkeys(
            s for s in streams if STREAM_NAME.match(s)
        )
        self._deflater = deflater
        #: Whether permessage-deflate was negotiated (frames go out compressed).
        self.compressed = deflater is not None
        self.sent = 0  # trade frames written, duplicates not counted
        self.closed = False
        self._limits = limits
        self._faults = faults
        self._rng = rng
        self._on_change = on_change
        self._transport = transport
        self._close_once = faults.take_close_next()
        self._lifetime = faults.lifetime_seconds
        self._stalled_until = 0.0
        self._stall_done = False
        self._shutdown_sent = False
        self._close_request: asyncio.Future[tuple[int, float]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pings: dict[bytes, float] = {}
        self._ping_counter = 0
        self._incoming: deque[float] = deque()

    # --- state the producer looks at ------------------------------------------------------

    @property
    def stalled(self) -> bool:
        if self._stalled_until and time.monotonic() >= self._stalled_until:
            self._stalled_until = 0.0
        return self._stalled_until != 0.0

    @property
    def wants_data(self) -> bool:
        """Open, subscribed and not stalled: counts as demand at full speed."""
        return not self.closed and bool(self.subscriptions) and not self.stalled

    def write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size()

    # --- data -----------------------------------------------------------------------------

    def deliver(self, batch: Sequence[Outgoing]) -> None:
        """Write the frames of ``batch`` this connection subscribed to, applying faults."""
        if self.closed or self.stalled or not self.subscriptions:
            return
        f = self._faults
        if (
            f.close_after_frames is None
            and self._close_once is None
            and (f.stall_after_frames is None or self._stall_done)
            and (f.shutdown_after_frames is None or self._shutdown_sent)
            and not f.duplicate_fraction
            and not f.malformed_fraction
        ):
            subs = self.subscriptions
            if self._deflater is not None:
                frames = [self._frame(o) for o in batch if o.stream in subs]
            elif self.combined and not self.microseconds:
                frames = [o.combined for o in batch if o.stream in subs]
            else:
                form = (self.combined, self.microseconds)
                frames = [o.frame(*form) for o in batch if o.stream in subs]
            if frames:
                self.sent += len(frames)
                self._transport.write(b"".join(frames))
            return
        self._deliver_with_faults(batch)

    def _deliver_with_faults(self, batch: Sequence[Outgoing]) -> None:
        f, rng, out = self._faults, self._rng, []
        for o in batch:
            if o.stream not in self.subscriptions:
                continue
            frame = self._frame(o)
            out.append(frame)
            self.sent += 1
            if f.duplicate_fraction and rng.random() < f.duplicate_fraction:
                out.append(frame)
            if f.malformed_fraction and rng.random() < f.malformed_fraction:
                out.append(junk_frame(rng.choice(_JUNK_KINDS), o.stream))
            close_at = min(x for x in (f.close_after_frames, self._close_once, math.inf) if x)
            if self.sent >= close_at:
                self._transport.write(b"".join(out))
                self.drop()
                return
            shutdown_at = f.shutdown_after_frames
            if shutdown_at is not None and not self._shutdown_sent and self.sent >= shutdown_at:
                out.append(self._shutdown_frame())
                self.request_close(WSCloseCode.GOING_AWAY, f.shutdown_close_delay)
            stall_at = f.stall_after_frames
            if stall_at is not None and not self._stall_done and self.sent >= stall_at:
                self._transport.write(b"".join(out))
                self.stall(f.stall_seconds)
                return
        if out:
            self._transport.write(b"".join(out))

    def _frame(self, outgoing: Outgoing) -> bytes:
        if self._deflater is None:
            return outgoing.frame(self.combined, self.microseconds)
        return self._deflater.frame(outgoing.data(self.combined, self.microseconds))

    def _text(self, payload: bytes) -> bytes:
        """A frame for a message of our own (replies, events), compressed if negotiated."""
        return ws_text_frame(payload) if self._deflater is None else self._deflater.frame(payload)

    def _shutdown_frame(self) -> bytes:
        self._shutdown_sent = True
        return self._text(server_shutdown_payload(time.time_ns() // 1_000_000, self.combined))

    # --- imperative faults ----------------------------------------------------------------

    def drop(self) -> None:
        """Flush and close TCP without a close frame: the client sees 1006."""
        self.closed = True
        self._transport.close()

    def stall(self, seconds: float | None) -> None:
        """Go silent (no data, pings or pongs) for ``seconds``, ``None`` = for good."""
        self._stall_done = True
        self._stalled_until = math.inf if seconds is None else time.monotonic() + seconds

    def send_shutdown(self, close_delay: float) -> None:
        """Send ``serverShutdown`` now and close with 1001 after ``close_delay`` seconds."""
        if not self.closed:
            self._transport.write(self._shutdown_frame())
            self.request_close(WSCloseCode.GOING_AWAY, close_delay)

    def request_close(self, code: int, delay: float = 0.0) -> None:
        if not self._close_request.done():
            self._close_request.set_result((code, delay))

    # --- the connection's life ------------------------------------------------------------

    async def run(self) -> None:
        """Serve until the WebSocket closes; owns the keepalive and closer tasks."""
        async with asyncio.TaskGroup() as tg:
            helpers = [tg.create_task(self._keepalive()), tg.create_task(self._closer())]
            if len(self.subscriptions) > self._limits.max_streams:
                self.request_close(WSCloseCode.POLICY_VIOLATION)
            try:
                await self._read_loop()
            finally:
                self.closed = True
                self._on_change()
                for task in helpers:
                    task.cancel()

    async def _closer(self) -> None:
        try:
            async with asyncio.timeout(self._lifetime):
                code, delay = await self._close_request
        except TimeoutError:
            code, delay = WSCloseCode.GOING_AWAY, 0.0  # the 24 h mark, shortened
        await asyncio.sleep(delay)
        self.closed = True
        await self.ws.close(code=code)

    async def _keepalive(self) -> None:
        """Ping every ``ping_interval``; close when a ping stays unanswered ``pong_timeout``."""
        limits = self._limits
        step = min(limits.ping_interval, limits.pong_timeout) / 4
        next_ping = time.monotonic() + limits.ping_interval
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            if self.stalled:
                self._pings.clear()
                next_ping = now + limits.ping_interval
                continue
            if self._pings and now - min(self._pings.values()) >= limits.pong_timeout:
                self.request_close(WSCloseCode.POLICY_VIOLATION)
                return
            if now >= next_ping and not self.closed:
                self._ping_counter += 1
                payload = str(self._ping_counter).encode()
                self._pings[payload] = now
                # The peer may vanish between the check and the write; the reader sees it too.
                with contextlib.suppress(ConnectionError):
                    await self.ws.ping(payload)
                next_ping = now + limits.ping_interval

    async def _read_loop(self) -> None:
        async for msg in self.ws:
            if self._over_rate_limit():
                self.request_close(WSCloseCode.POLICY_VIOLATION)
                continue
            if self.stalled:
                continue
            if msg.type == WSMsgType.PING:
                with contextlib.suppress(ConnectionError):
                    await self.ws.pong(msg.data)
            elif msg.type == WSMsgType.PONG:
                sent_at = self._pings.get(bytes(msg.data))
                if sent_at is not None:  # unsolicited pongs do not count as replies
                    self._pings = {p: t for p, t in self._pings.items() if t > sent_at}
            elif msg.type == WSMsgType.TEXT:
                self._control(msg.data)

    def _over_rate_limit(self) -> bool:
        now = time.monotonic()
        self._incoming.append(now)
        while self._incoming[0] < now - RATE_WINDOW_SECONDS:
            self._incoming.popleft()
        return len(self._incoming) > self._limits.max_incoming_per_second

    # --- live control ---------------------------------------------------------------------

    def _reply(self, message: dict[str, Any]) -> None:
        if not self.closed:
            self._transport.write(self._text(msgspec.json.encode(message)))

    def _control(self, text: str) -> None:
        try:
            request = parse_request(text)
            if request.method in ("SUBSCRIBE", "UNSUBSCRIBE"):
                self._subscribe(request)
            elif request.method == "LIST_SUBSCRIPTIONS":
                if request.params:
                    raise ControlError(INVALID_REQUEST, TOO_MANY_PARAMETERS, request.id)
                self._reply({"result": list(self.subscriptions), "id": request.id})
            else:
                self._property(request)
        except ControlError as refused:
            self._reply(refused.reply())

    def _subscribe(self, request: Request) -> None:
        streams = request.params
        if not all(isinstance(p, str) and STREAM_NAME.match(p) for p in streams):
            # Seen on Binance: a malformed name is refused, and the client dropped ~1 s later.
            # A well-formed name of an unknown symbol or channel is accepted and stays silent.
            if self._limits.invalid_stream_close_delay is not None:
                delay = self._limits.invalid_stream_close_delay
                self.request_close(WSCloseCode.POLICY_VIOLATION, delay)
            raise ControlError(INVALID_REQUEST, INVALID_STREAM, request.id)
        if request.method == "SUBSCRIBE":
            self.subscriptions.update(dict.fromkeys(streams))
            if len(self.subscriptions) > self._limits.max_streams:
                self.request_close(WSCloseCode.POLICY_VIOLATION)
                return
        else:
            for stream in streams:
                self.subscriptions.pop(stream, None)
        self._on_change()
        self._reply({"result": None, "id": request.id})

    def _property(self, request: Request) -> None:
        params, request_id = request.params, request.id
        if not params or not isinstance(params[0], str):
            raise ControlError(INVALID_REQUEST, PROPERTY_NAME, request_id)
        if params[0] not in PROPERTIES:
            raise ControlError(UNKNOWN_PROPERTY, "Unknown property", request_id)
        if request.method == "GET_PROPERTY":
            if len(params) > 1:
                raise ControlError(INVALID_REQUEST, TOO_MANY_PARAMETERS, request_id)
            self._reply({"result": self.combined, "id": request_id})
            return
        if len(params) > 2:
            raise ControlError(INVALID_REQUEST, TOO_MANY_PARAMETERS, request_id)
        if len(params) < 2 or not isinstance(params[1], bool):
            raise ControlError(BAD_VALUE_TYPE, "Invalid value type: expected Boolean", request_id)
        self.combined = params[1]
        self._reply({"result": None, "id": request_id})
