"""WebSocket connections: read trade frames forever, reconnect, rotate without a gap.

One `ConnectionGroup` per set of at most 1024 symbols. It keeps one live connection and
replaces it when it ends (with backoff), when it goes silent (watchdog), and — make before
break — before Binance's 24 h cut or on `serverShutdown`: the successor is opened and consumed
first, and the predecessor is closed only once the successor delivered a frame. The tracker
drops the overlap by trade id.

The reader never stops reading: it only decodes and hands trades to the tracker (which never
blocks); pings are answered here, explicitly, so the watchdog can see them.

Time that decides (the watchdog's silence, the lifetime, the hand-over's deadline) is read
from the policy's `clock`; the hand-over wakes on the connections' progress, not on a poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp

from binprice._aio import first_of
from binprice.errors import ExchangeError, GeoRestrictedError
from binprice.exchange.backoff import AttemptBudget, Backoff
from binprice.exchange.endpoints import market_api
from binprice.exchange.protocol import (
    ErrorFrame,
    Event,
    Malformed,
    NonMarketTrade,
    OtherEvent,
    SeriesRecord,
    ServerShutdown,
    WireAggTrade,
    WireTrade,
    decode_frame,
    stream_name,
)
from binprice.exchange.rest import GEO_HINT
from binprice.exchange.subscriptions import Outbox, connection_path
from binprice.markets import Market
from binprice.symbols import MAX_STREAMS_PER_CONNECTION

#: Binance lets a connection live 24 h; rotate a little before that.
DEFAULT_LIFETIME_SECONDS = 23.5 * 3600
#: No frame and no ping for this long means the connection is dead even if TCP says otherwise.
#: Binance pings every 20 s, so a healthy connection is never silent for a minute.
DEFAULT_STALE_SECONDS = 60.0
#: ... that is, three of the server's pings (docs/futures.md §2 for the futures markets').
STALE_PINGS = 3
#: How long a retiring connection may keep reading while its successor gets going.
ROTATION_OVERLAP_MAX_SECONDS = 30.0
#: Most trades a successor holds back while its predecessor catches up.
ROTATION_HOLD_MAX = 50_000
WATCH_TICK_SECONDS = 0.25
MAX_FRAME_BYTES = 1 << 20
#: Handshakes refused in a row (a 4xx, or an answer that is not a WebSocket upgrade) before the
#: run gives up: one refusal may be a proxy's hiccup, three mean the URL is wrong.
REFUSALS_BEFORE_GIVING_UP = 3
REPLICA_STAGGER_SECONDS = 1.0
HANDSHAKE_TIMEOUT_SECONDS = 10.0
#: How long closing a connection waits for the exchange's close frame (then the socket is
#: simply closed): a rotation or a stop never waits on an exchange that does not answer.
CLOSE_TIMEOUT_SECONDS = 0.25


@dataclass(slots=True)
class StreamPolicy:
    """Connection timing, switchable in tests."""

    lifetime: float = DEFAULT_LIFETIME_SECONDS
    stale_after: float = DEFAULT_STALE_SECONDS
    backoff: Callable[[], Backoff] = Backoff
    #: Longest a rotation waits for the retiring connection to catch up with its successor.
    overlap_max: float = ROTATION_OVERLAP_MAX_SECONDS
    #: Connection attempts of the whole run (every group shares it): Binance's 300 per 5 min.
    budget: AttemptBudget = field(default_factory=AttemptBudget)
    #: With redundancy, replica `r` connects `r` times this later than the first, so the
    #: replicas do not share the fate of one moment (a fault that hits connections of the
    #: same age, a burst of drops).
    replica_stagger: float = REPLICA_STAGGER_SECONDS
    #: Monotonic seconds: what the watchdog, the lifetime and the hand-over deadline read.
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def of_market(cls, market: Market) -> StreamPolicy:
        """The timing for `market`'s streams: stale after three of its server's ping intervals
        without a frame (Spot pings every 20 s: 60 s; the futures every 3 minutes: 9 minutes,
        so a quiet contract's connection is not taken for dead)."""
        return cls(stale_after=STALE_PINGS * market_api(market).ping_interval)


@dataclass(slots=True, eq=False)
class _Connection:
    number: int
    lifetime: float
    frames: int = 0
    trades: int = 0
    opened_at: float = 0.0
    #: Ended by the watchdog: no frame for the stale period.
    stale: bool = False
    first_frame: asyncio.Event = field(default_factory=asyncio.Event)
    rotate: asyncio.Event = field(default_factory=asyncio.Event)
    retire: asyncio.Event = field(default_factory=asyncio.Event)
    ended: str = ""
    #: While its predecessor is still catching up, a successor's trades wait here (and the
    #: first id per symbol in `held_first`), so the overlap never looks like a gap.
    held: list[SeriesRecord | NonMarketTrade] | None = None
    held_first: dict[str, int] = field(default_factory=dict)
    #: SUBSCRIBE/UNSUBSCRIBE requests waiting to go out on this connection.
    outbox: Outbox = field(default_factory=Outbox)
    #: During a hand-over, set whenever this connection delivers or holds a trade (the
    #: retiring side then checks whether the two have met).
    nudge: asyncio.Event | None = None


def group_label(symbols: list[str], replica: int = 0, replicas: int = 1) -> str:
    """`BTCUSDT`, `BTCUSDT+1`; with redundancy `BTCUSDT+1#2` for the second connection."""
    label = symbols[0] if len(symbols) == 1 else f"{symbols[0]}+{len(symbols) - 1}"
    return f"{label}#{replica + 1}" if replicas > 1 else label


class TradeReceiver(Protocol):
    """Where a group's trades go (the ingest run's tracker): it never blocks the reader."""

    def last_id(self, symbol: str) -> int | None: ...

    def on_trade(self, trade: SeriesRecord, source: int = 0) -> None: ...

    def skip(self, symbol: str, trade_id: int) -> None:
        """A futures trade that is not stored (`NonMarketTrade`) took this id."""


class StreamRecorder(Protocol):
    """What a group reports of its connections (the ingest run's recorder)."""

    def connected(self, label: str, number: int) -> None: ...

    def disconnected(self) -> None: ...

    def connect_failed(self, reason: str) -> None: ...

    def reconnecting(self, label: str, ended: str, delay: float, *, stale: bool) -> None: ...

    def rotation_due(self, label: str, *, server_shutdown: bool) -> None: ...

    def rotated(self) -> None: ...

    def error_frame(self, label: str, code: object, msg: str) -> None: ...

    def malformed_frame(self, label: str, reason: str) -> None: ...

    def other_frame(self) -> None: ...


class ConnectionWatcher(Protocol):
    """Told when a connection completed its handshake (the run's reconciler)."""

    def connected(self, symbols: Iterable[str]) -> None: ...


class ConnectionGroup:
    """Keeps the trade streams of `symbols` flowing into the tracker until `stop` is set.

    `source` numbers this group's connections for the tracker (which counts who delivered each
    trade first). With redundancy, replica `r` of `replicas` groups carry the same symbols;
    the first connection of replica `r` lives `1 - r/replicas` of the normal lifetime, so the
    replicas' 24 h rotations never coincide.
    """

    def __init__(  # noqa: PLR0913 (the market's decoder is the 13th)
        self,
        session: aiohttp.ClientSession,
        ws_url: str,
        symbols: list[str],
        tracker: TradeReceiver,
        recorder: StreamRecorder,
        *,
        stop: asyncio.Event,
        policy: StreamPolicy,
        reconciler: ConnectionWatcher | None = None,
        source: int = 0,
        replica: int = 0,
        replicas: int = 1,
        capacity: int = MAX_STREAMS_PER_CONNECTION,
        decode: Callable[[bytes | str], SeriesRecord | Event] = decode_frame,
        stream: Callable[[str], str] = stream_name,
    ) -> None:
        self._session = session
        #: A symbol's stream name: `@trade`, or `protocol.agg_stream_name` with `decode_agg_frame`.
        self._stream = stream
        #: The market's frame decoder (`protocol.frame_decoder`), or `decode_agg_frame` for
        #: aggregate trades (which take `_on_event`'s path: `_consume` inlines trades only).
        self._decode = decode
        self._capacity = capacity
        self._symbols = list(symbols)
        self._ws_url = ws_url
        #: Connections open now (two during a rotation): where live changes go.
        self._live: set[_Connection] = set()
        self._label = group_label(symbols, replica, replicas)
        self._tracker = tracker
        self._recorder = recorder
        self._stop = stop
        self._policy = policy
        self._reconciler = reconciler
        self._source = source
        self._first_lifetime = policy.lifetime * (1 - replica / replicas)
        self._delay = replica * policy.replica_stagger
        self._numbers = 0
        self._refusals = 0

    async def run(self) -> None:
        backoff = self._policy.backoff()
        if self._delay:
            await first_of(asyncio.sleep(self._delay), self._stop.wait())
        async with asyncio.TaskGroup() as tg:
            previous: tuple[_Connection, asyncio.Task[None]] | None = None
            while not self._stop.is_set():
                conn = self._new_connection()
                if previous is not None:
                    conn.held = []
                task = tg.create_task(self._connection(conn))
                if previous is not None:
                    tg.create_task(self._retire(*previous, conn, task))
                await first_of(conn.rotate.wait(), task, self._stop.wait())
                if self._stop.is_set():
                    conn.retire.set()
                    self._release(conn)
                    break
                if conn.rotate.is_set() and not task.done():
                    self._recorder.rotated()
                    previous = (conn, task)
                    continue
                self._release(conn)
                previous = None
                if conn.trades:
                    backoff.healthy()  # it handshook and delivered: the endpoint works
                delay = max(backoff.next_delay(), self._policy.budget.wait())
                self._recorder.reconnecting(self._label, conn.ended, delay, stale=conn.stale)
                await first_of(asyncio.sleep(delay), self._stop.wait())

    @property
    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def room(self) -> int:
        """Streams this group can still take."""
        return self._capacity - len(self._symbols)

    def add(self, symbols: Iterable[str]) -> list[str]:
        """Carry `symbols` too (subscribed on the open connections now); return the new ones."""
        new = [s for s in symbols if s not in self._symbols][: max(0, self.room)]
        self._symbols.extend(new)
        for conn in self._live:
            conn.outbox.subscribe(new)
        return new

    def remove(self, symbols: Iterable[str]) -> list[str]:
        """Stop carrying `symbols` (unsubscribed now); return those that were carried."""
        gone = [s for s in symbols if s in self._symbols]
        self._symbols = [s for s in self._symbols if s not in gone]
        for conn in self._live:
            conn.outbox.unsubscribe(gone)
        return gone

    def _new_connection(self) -> _Connection:
        self._numbers += 1
        lifetime = self._first_lifetime if self._numbers == 1 else self._policy.lifetime
        return _Connection(self._numbers, lifetime, outbox=Outbox(self._stream))

    async def _retire(
        self,
        old: _Connection,
        old_task: asyncio.Task[None],
        new: _Connection,
        new_task: asyncio.Task[None],
    ) -> None:
        """Make before break: close `old` once `new` delivers and `old` has caught up with it.

        Caught up means: for every symbol `new` has delivered, the tracker already has the id
        just before the first one `new` delivered. Until then `new`'s trades are held, so the
        two connections' interleaving never opens a gap that REST would have to fill.
        """
        clock = self._policy.clock
        deadline = clock() + self._policy.overlap_max
        nudge = old.nudge = new.nudge = asyncio.Event()
        try:
            while not (old_task.done() or new_task.done()):
                if new.first_frame.is_set() and self._caught_up(new.held_first):
                    break
                left = deadline - clock()
                if left <= 0:
                    break
                nudge.clear()
                waiter = asyncio.ensure_future(nudge.wait())
                try:
                    await asyncio.wait(
                        [waiter, old_task, new_task],
                        timeout=left,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    waiter.cancel()
        finally:
            old.nudge = new.nudge = None
        old.retire.set()
        self._release(new)

    def _caught_up(self, first_ids: dict[str, int]) -> bool:
        last_id = self._tracker.last_id
        for symbol, first in first_ids.items():
            last = last_id(symbol)
            if last is None or last < first - 1:
                return False
        return True

    def _release(self, conn: _Connection) -> None:
        """Hand the trades `conn` held during a rotation to the tracker; stop holding."""
        held, conn.held = conn.held, None
        if held:
            on_trade = self._tracker.on_trade
            source = self._source
            for trade in held:
                if isinstance(trade, NonMarketTrade):
                    self._tracker.skip(trade.symbol, trade.trade_id)
                else:
                    on_trade(trade, source)

    async def _connection(self, conn: _Connection) -> None:
        """One WebSocket connection from handshake to close; errors end it, never the group."""
        self._policy.budget.record()
        path, to_subscribe = connection_path(self._symbols, self._stream)
        carried = list(self._symbols)
        try:
            async with self._session.ws_connect(
                self._ws_url + path,
                autoping=False,
                heartbeat=None,
                max_msg_size=MAX_FRAME_BYTES,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT_SECONDS),
            ) as ws:
                conn.opened_at = self._policy.clock()
                self._refusals = 0
                self._recorder.connected(self._label, conn.number)
                try:
                    conn.outbox.subscribe(to_subscribe)
                    self._live.add(conn)
                    async with asyncio.TaskGroup() as tg:
                        reader = tg.create_task(self._consume(ws, conn))
                        helpers = [
                            tg.create_task(conn.outbox.send_forever(ws)),
                            tg.create_task(self._subscribed(conn, carried)),
                        ]
                        tg.create_task(self._watch(conn, reader, helpers))
                finally:
                    self._live.discard(conn)
                    self._recorder.disconnected()
                if not conn.ended:
                    conn.ended = _close_reason(ws)
        except aiohttp.WSServerHandshakeError as exc:
            self._refused(conn, exc.status, exc.message)
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            conn.ended = f"connection failed: {exc or exc.__class__.__name__}"
            self._recorder.connect_failed(conn.ended)

    def _refused(self, conn: _Connection, status: int, message: str) -> None:
        """A handshake answered without an upgrade: 451 is final, 5xx and 429 are retried,
        anything else (a 4xx, an HTML page) is final once it happened a few times in a row."""
        if status == 451:
            raise GeoRestrictedError(GEO_HINT)
        url = self._ws_url + "/stream"
        if status >= 500 or status == 429:
            conn.ended = f"the exchange answered the stream handshake with HTTP {status}"
            self._recorder.connect_failed(conn.ended)
            return
        self._refusals += 1
        if status < 400:
            reason = f"HTTP {status} instead of a WebSocket upgrade: is {url} a WebSocket endpoint?"
        else:
            reason = f"HTTP {status} ({message})"
        conn.ended = f"the stream handshake was refused: {reason}"
        self._recorder.connect_failed(conn.ended)
        if self._refusals >= REFUSALS_BEFORE_GIVING_UP:
            raise ExchangeError(
                f"the exchange refused the stream connection to {url} {self._refusals} times in a "
                f"row: {reason}; check --ws-url or --exchange"
            )

    # The per-frame hot loop: the trade path is inlined (no call per trade), so its branches
    # stay in one place on purpose; rarer frames go to `_on_event`.
    async def _consume(  # noqa: C901, PLR0912
        self, ws: aiohttp.ClientWebSocketResponse, conn: _Connection
    ) -> None:
        on_trade = self._tracker.on_trade
        decode = self._decode
        text = aiohttp.WSMsgType.TEXT
        receive = ws.receive
        first = conn.first_frame
        source = self._source
        while True:
            msg = await receive()
            kind = msg.type
            if kind is text:
                conn.frames += 1
                item = decode(msg.data)
                if type(item) is WireTrade:
                    conn.trades += 1
                    held = conn.held
                    if held is None:
                        on_trade(item, source)
                    else:
                        held.append(item)
                        conn.held_first.setdefault(item.symbol, item.trade_id)
                        if len(held) >= ROTATION_HOLD_MAX:
                            # Memory stays bounded: give up the gap-free hand-over; the
                            # tracker records a gap and REST fills it.
                            self._release(conn)
                    if not first.is_set():
                        first.set()
                    if conn.nudge is not None:
                        conn.nudge.set()
                else:
                    self._on_event(item, conn)
            elif kind is aiohttp.WSMsgType.PING:
                conn.frames += 1
                await ws.pong(msg.data)
            elif kind is aiohttp.WSMsgType.BINARY:
                conn.frames += 1
                self._on_event(decode(msg.data), conn)
            elif kind is aiohttp.WSMsgType.PONG:
                continue
            else:
                return

    def _on_event(self, item: object, conn: _Connection) -> None:
        if isinstance(item, WireTrade | WireAggTrade | NonMarketTrade):
            self._on_id(item, conn)
        elif isinstance(item, ServerShutdown):
            self._recorder.rotation_due(self._label, server_shutdown=True)
            conn.rotate.set()
        elif isinstance(item, ErrorFrame):
            self._recorder.error_frame(self._label, item.code, item.msg)
        elif isinstance(item, Malformed):
            self._recorder.malformed_frame(self._label, item.reason)
        elif isinstance(item, OtherEvent):
            self._recorder.other_frame()

    def _on_id(self, item: SeriesRecord | NonMarketTrade, conn: _Connection) -> None:
        """A trade or an aggregate trade, or a futures trade that is not stored but took its
        id (handed over in order with the trades around it: held with them during a
        rotation)."""
        if conn.held is not None:
            conn.held.append(item)
            conn.held_first.setdefault(item.symbol, item.trade_id)
            if len(conn.held) >= ROTATION_HOLD_MAX:
                self._release(conn)  # memory stays bounded, as in `_consume`
        elif isinstance(item, NonMarketTrade):
            self._tracker.skip(item.symbol, item.trade_id)
        else:
            self._tracker.on_trade(item, self._source)
        if not isinstance(item, NonMarketTrade):
            conn.trades += 1
            if not conn.first_frame.is_set():
                conn.first_frame.set()
        if conn.nudge is not None:
            conn.nudge.set()

    async def _subscribed(self, conn: _Connection, symbols: list[str]) -> None:
        """Once the connection asked for all its streams, the reconciler may judge silence."""
        await conn.outbox.idle.wait()
        if self._reconciler is not None:
            self._reconciler.connected(symbols)

    async def _watch(
        self, conn: _Connection, reader: asyncio.Task[None], helpers: list[asyncio.Task[None]]
    ) -> None:
        """Ends the reader when the connection is stale, retired, or asked to stop."""
        policy = self._policy
        clock = policy.clock
        seen, seen_at = conn.frames, clock()
        while not reader.done():
            await asyncio.wait([reader], timeout=WATCH_TICK_SECONDS)
            now = clock()
            if conn.frames != seen:
                seen, seen_at = conn.frames, now
            elif now - seen_at >= policy.stale_after:
                conn.ended = f"no frame for {policy.stale_after:g} s (stale)"
                conn.stale = True
                break
            if not conn.rotate.is_set() and now - conn.opened_at >= conn.lifetime:
                self._recorder.rotation_due(self._label, server_shutdown=False)
                conn.rotate.set()
            if conn.retire.is_set() or self._stop.is_set():
                conn.ended = "retired" if conn.retire.is_set() else "stopped"
                break
        reader.cancel()
        for task in helpers:
            task.cancel()


def _close_reason(ws: aiohttp.ClientWebSocketResponse) -> str:
    code = ws.close_code
    exc = ws.exception()
    if exc is not None:
        return f"connection lost ({exc})"
    return f"closed by the server (code {code})" if code is not None else "connection closed"
