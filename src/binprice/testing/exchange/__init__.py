"""A Binance-compatible test exchange: trade and aggregate trade streams, REST backfill, fault
injection, for Spot or one futures market (``market=Market.USDM``: ``/fapi/v1`` REST and the
futures frame shapes; ``Market.COINM``: ``/dapi/v1``).

In tests::

    async with TestExchange(["BTCUSDT", "ETHUSDT"], seed=1, rate=None) as ex:
        url = ex.ws_url + "/stream?streams=btcusdt@trade"
        ...
        assert stored == ex.produced("BTCUSDT")

From a shell (benchmarks, curious users)::

    binprice exchange --port 9443 --seed 1 --rate 50 --symbols BTCUSDT,ETHUSDT

It prints one JSON line with ``ws_url`` and ``rest_url`` once it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path
from types import TracebackType

from aiohttp import WSCloseCode, web

from binprice.exchange.protocol import WireTrade
from binprice.markets import Market
from binprice.symbols import DEFAULT_SYMBOLS
from binprice.testing.connection import ConnectionLimits, StreamConnection
from binprice.testing.faults import Faults
from binprice.testing.frames import Outgoing, negotiated_deflater
from binprice.testing.generator import TradeGenerator, symbol_spec, wall_clock_us
from binprice.testing.http import geo_blocked, json_response
from binprice.testing.pacing import MIN_TICK_SECONDS, PacedSchedule
from binprice.testing.rest import RestApi
from binprice.testing.timeline import live_spec
from binprice.testing.tls import TlsFiles, self_signed, server_context

#: Trades per symbol produced per step at full speed: big enough to amortise one transport
#: write over many frames, small enough that control replies are never far behind.
FULL_SPEED_BATCH = 200
#: At full speed, wait while any reader has more than this many bytes unsent.
HIGH_WATER_BYTES = 256 * 1024
DRAIN_POLL_SECONDS = 0.0005
DEMAND_POLL_SECONDS = 0.05
#: How long a server-side close waits for the client's close frame.
CLOSE_TIMEOUT_SECONDS = 2.0


def _by_time(outgoing: Outgoing) -> int:
    return outgoing.time


class TestExchange:
    """The exchange, runnable in-process as an async context manager."""

    __test__ = False  # not a pytest test class, despite the name

    # The market is the thirteenth option: the exchange's whole configuration is these keyword
    # arguments (a dozen tests' worth of call sites), not worth a settings object of its own.
    def __init__(  # noqa: PLR0913
        self,
        symbols: Iterable[str] = DEFAULT_SYMBOLS,
        *,
        seed: int = 0,
        rate: float | None = None,
        rates: Mapping[str, float] | None = None,
        max_trades: int | None = None,
        statuses: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: ConnectionLimits | None = None,
        weight_limit: int | None = None,
        faults: Faults | None = None,
        tls: TlsFiles | bool = False,
        market: Market = Market.SPOT,
    ) -> None:
        """``rate`` is trades/s per symbol; ``None`` = as fast as the slowest reader reads.

        ``rates`` overrides ``rate`` for the symbols it names (``{"RAREUSDT": 0.2}``); those
        are always paced, whatever ``rate`` is.
        ``tls=True`` serves wss/https with a self-signed certificate made at start (its path is
        ``tls_files.cert``); ``tls=TlsFiles(cert, key)`` serves with that one.

        ``max_trades`` caps each symbol, after which its stream goes quiet. Symbols whose
        ``statuses`` entry is not TRADING produce nothing (they still appear in exchangeInfo).

        ``market`` picks the REST prefix, weights and limits and the frame shapes;
        ``weight_limit`` defaults to the market's. The futures ``historicalTrades`` takes any
        well-formed API key unless ``rest.api_keys`` names the accepted ones.
        """
        self.market = market
        # The exchange continues its market's history from now on (testing/timeline.py).
        now_us = wall_clock_us()
        self.generators = {
            s.upper(): TradeGenerator(
                s, seed, spec=live_spec(symbol_spec(s.upper(), market), now_us), market=market
            )
            for s in symbols
        }
        self.statuses = {s.upper(): v for s, v in (statuses or {}).items()}
        self.rate = rate
        #: Paced trades/s of each symbol; the symbols missing here run at full speed.
        self.rates = {s: rate for s in self.generators} if rate is not None else {}
        for symbol, symbol_rate in (rates or {}).items():
            if symbol.upper() not in self.generators:
                raise ValueError(f"rates names {symbol}, which the exchange does not list")
            if not symbol_rate > 0:
                raise ValueError(f"rate of {symbol} must be positive, not {symbol_rate}")
            self.rates[symbol.upper()] = symbol_rate
        self.max_trades = max_trades
        self.faults = faults or Faults()
        #: Symbols that produce nothing for now (a quiet market); change it at any time.
        self.paused: set[str] = set()
        #: Multiplies every paced rate while set (20.0: a burst); change it at any time.
        self.speed = 1.0
        self.limits = limits or ConnectionLimits()
        self.rest = RestApi(
            self.generators,
            self.statuses,
            self.faults,
            weight_limit,
            market=market,
        )
        self.connections: set[StreamConnection] = set()
        self.connections_opened = 0
        self._host, self._port = host, port
        self._tls = tls
        #: The certificate and key served, once started with TLS.
        self.tls_files: TlsFiles | None = tls if isinstance(tls, TlsFiles) else None
        self._rng = random.Random(seed)
        self._demand = asyncio.Event()
        self._subscriptions_changed = asyncio.Event()
        self._subscribed: set[str] | None = None
        self._stack = AsyncExitStack()
        self._producer: asyncio.Task[None] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    async def __aenter__(self) -> TestExchange:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen and start producing; ``port=0`` picks a free port."""
        app = web.Application()
        app.router.add_routes(self.rest.routes())
        # Every path Binance serves streams on; what follows /ws/ is a stream list, but any
        # text is accepted there (ccxt opens /ws/0 and then subscribes).
        for path in ("/stream", "/stream/{tail:.*}", "/ws", "/ws/{tail:.*}"):
            app.router.add_get(path, self._ws_handler)
        app.on_shutdown.append(self._close_connections)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        context = None
        if self._tls:
            if self.tls_files is None:
                directory = Path(self._stack.enter_context(tempfile.TemporaryDirectory()))
                self.tls_files = self_signed(directory, [self._host])
            context = server_context(self.tls_files)
        site = web.TCPSite(runner, self._host, self._port, ssl_context=context)
        await site.start()
        self._port = runner.addresses[0][1]
        # One owned task, not a TaskGroup: a TaskGroup must be exited by the task that entered
        # it, and pytest fixtures may start and stop the exchange from different tasks. stop()
        # awaits the task and re-raises whatever killed it, so nothing is fire-and-forget.
        self._producer = asyncio.create_task(self._produce(), name="test-exchange-producer")

    async def stop(self) -> None:
        """Close every connection (1001), stop producing, stop listening."""
        producer, self._producer = self._producer, None
        try:
            if producer is not None:
                producer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await producer
        finally:
            await self._stack.aclose()

    async def _close_connections(self, app: web.Application) -> None:
        for connection in list(self.connections):
            connection.request_close(WSCloseCode.GOING_AWAY)
        await asyncio.sleep(0)

    @property
    def port(self) -> int:
        return self._port

    @property
    def ws_url(self) -> str:
        """Base for stream URLs; append ``/stream?streams=...`` or ``/ws/<stream>``."""
        return f"{'wss' if self._tls else 'ws'}://{self._host}:{self._port}"

    @property
    def rest_url(self) -> str:
        return f"{'https' if self._tls else 'http'}://{self._host}:{self._port}"

    # --- what the tests assert against ----------------------------------------------------

    def produced(self, symbol: str) -> list[WireTrade]:
        """Every trade produced for ``symbol``, in id order (sent on the stream or not)."""
        return self.generators[symbol.upper()].trades()

    def never_served(self, symbol: str) -> set[int]:
        """Ids of ``symbol`` the exchange produced but served nowhere (``Faults.lose_next``)."""
        generator = self.generators[symbol.upper()]
        return {generator.first_id + i for i in generator.lost}

    def subscribed_symbols(self) -> set[str]:
        """Symbols whose ``@trade`` stream some open connection carries now."""
        return {s.split("@")[0].upper() for s in self._subscribed_streams() if s.endswith("@trade")}

    async def wait_subscribed(self, predicate: Callable[[set[str]], bool]) -> None:
        """Wait until ``predicate(subscribed_symbols())`` holds (wrap in ``asyncio.timeout``);
        woken by every connection and subscription change, not by polling."""
        while True:
            self._subscriptions_changed.clear()
            if predicate(self.subscribed_symbols()):
                return
            await self._subscriptions_changed.wait()

    def produced_count(self, symbol: str) -> int:
        return len(self.generators[symbol.upper()])

    async def wait_produced(self, symbol: str, count: int) -> None:
        """Wait until ``symbol`` has at least ``count`` trades (wrap in ``asyncio.timeout``)."""
        # Polling keeps the producer's hot loop free of per-batch notifications.
        while self.produced_count(symbol) < count:  # noqa: ASYNC110
            await asyncio.sleep(DEMAND_POLL_SECONDS / 10)

    # --- imperative faults on the open connections ----------------------------------------

    def stall_connections(self, seconds: float | None) -> None:
        for connection in self.connections:
            connection.stall(seconds)

    def shutdown_connections(self, close_delay: float = 0.5) -> None:
        for connection in self.connections:
            connection.send_shutdown(close_delay)

    def drop_connections(self) -> None:
        for connection in self.connections:
            connection.drop()

    # --- WebSocket ------------------------------------------------------------------------

    async def _ws_handler(self, request: web.Request) -> web.StreamResponse:
        if self.faults.geo_block_ws:
            return geo_blocked()
        if self.faults.refuse_ws_status is not None:
            status = self.faults.refuse_ws_status
            return json_response(status, {"code": -1001, "msg": "Service unavailable."})
        combined = request.path.startswith("/stream")
        text = request.query.get("streams", "") if combined else request.match_info.get("tail", "")
        time_unit = request.query.get("timeUnit", "MILLISECOND").upper()
        if time_unit not in ("MILLISECOND", "MICROSECOND"):
            return json_response(400, {"code": -1100, "msg": f"Invalid timeUnit: {time_unit}"})
        # compress=True: permessage-deflate is accepted when the client offers it, as Binance does.
        ws = web.WebSocketResponse(autoping=False, compress=True, timeout=CLOSE_TIMEOUT_SECONDS)
        await ws.prepare(request)
        assert request.transport is not None
        connection = StreamConnection(
            ws,
            request.transport,
            [s for s in text.split("/") if s],
            combined=combined,
            microseconds=time_unit == "MICROSECOND",
            deflater=negotiated_deflater(ws),
            limits=self.limits,
            faults=self.faults,
            rng=random.Random(self._rng.random()),
            on_change=self._connections_changed,
        )
        self.connections.add(connection)
        self.connections_opened += 1
        self._connections_changed()
        try:
            await connection.run()
        finally:
            self.connections.discard(connection)
            self._connections_changed()
        return ws

    def _connections_changed(self) -> None:
        self._subscribed = None
        self._demand.set()
        self._subscriptions_changed.set()

    def _subscribed_streams(self) -> set[str]:
        """Every stream some open connection subscribed to (cached until one changes)."""
        if self._subscribed is None:
            self._subscribed = {s for c in self.connections for s in c.subscriptions}
        return self._subscribed

    # --- production -----------------------------------------------------------------------

    def _finished(self, generator: TradeGenerator) -> bool:
        return self.max_trades is not None and len(generator) >= self.max_trades

    def _may_trade(self, generator: TradeGenerator) -> bool:
        """Not paused, TRADING and below ``max_trades``: allowed to produce right now."""
        return (
            self.statuses.get(generator.symbol, "TRADING") == "TRADING"
            and generator.symbol not in self.paused
            and not self._finished(generator)
        )

    def _emit(
        self,
        generator: TradeGenerator,
        count: int,
        now_us: int,
        out: list[Outgoing],
        since_us: int | None = None,
    ) -> int:
        """Produce ``count`` trades of ``generator`` into ``out``, dated after ``since_us`` (if
        given); return how many were made."""
        limit = None if self.max_trades is None else self.max_trades - len(generator)
        faults = self.faults
        first_index, first_agg = len(generator), len(generator.aggregates)
        payloads = generator.produce(count, now_us, limit=limit, since_us=since_us)
        stream, render, withheld = generator.stream, generator.payload, set()
        for index, payload in enumerate(payloads, first_index):
            # Skipped trades stay in the record (REST serves them) but reach no connection.
            if faults.lose_next > 0:
                faults.lose_next -= 1
                generator.lost.add(index)
                withheld.add(index)
            elif faults.non_market_next > 0 and generator.market is not Market.SPOT:
                # On the trade stream with its kind, nowhere else (docs/futures.md §3).
                faults.non_market_next -= 1
                generator.lost.add(index)
                generator.non_market[index] = faults.non_market_kind
                withheld.add(index)
                frame = generator.payload(index)
                out.append(Outgoing(stream, frame, generator.time_us(index), render, index))
            elif faults.skip_next > 0:
                faults.skip_next -= 1
                withheld.add(index)
            elif faults.skip_fraction and self._rng.random() < faults.skip_fraction:
                withheld.add(index)
            else:
                out.append(Outgoing(stream, payload, generator.time_us(index), render, index))
        if generator.agg_stream in self._subscribed_streams():
            self._emit_aggregates(generator, first_agg, withheld, out)
        return len(payloads)

    @staticmethod
    def _emit_aggregates(
        generator: TradeGenerator, first_agg: int, withheld: set[int], out: list[Outgoing]
    ) -> None:
        """The new aggregates for ``@aggTrade``; one with a withheld trade is withheld too."""
        book, render = generator.aggregates, generator.agg_payload
        for agg in range(first_agg, len(book)):
            start, stop = book.trades_of(agg, len(generator))
            if withheld and not withheld.isdisjoint(range(start, stop)):
                continue
            payload = render(agg)
            out.append(
                Outgoing(generator.agg_stream, payload, generator.time_us(start), render, agg)
            )

    def _deliver(self, batch: list[Outgoing]) -> None:
        # Symbols interleave by trade time, as on one Binance connection (the sort is stable,
        # so each symbol's trades keep their id order).
        batch.sort(key=_by_time)
        for connection in list(self.connections):
            connection.deliver(batch)

    async def _produce(self) -> None:
        full_speed = [g for g in self.generators.values() if g.symbol not in self.rates]
        async with asyncio.TaskGroup() as tg:
            if self.rates:
                tg.create_task(self._produce_paced(PacedSchedule(self.rates, time.monotonic())))
            if full_speed:
                tg.create_task(self._produce_full_speed(full_speed))

    async def _produce_paced(self, schedule: PacedSchedule) -> None:
        # The schedule runs on market time, which runs `speed` times as fast as the clock.
        now = last = time.monotonic()
        tick_us = wall_clock_us()
        while True:
            wait = schedule.wait_seconds(now) / self.speed
            await asyncio.sleep(max(MIN_TICK_SECONDS, wait))
            clock = time.monotonic()
            now, last = now + (clock - last) * self.speed, clock
            # Trades fall due between the previous tick and this one: dated in between.
            since_us, (now_us, batch) = tick_us, (wall_clock_us(), list[Outgoing]())
            tick_us = now_us
            for pace in schedule.take_due(now):
                generator = self.generators[pace.symbol]
                if self._finished(generator):
                    continue  # for good: it leaves the schedule
                owed = pace.owed(now)
                if self._may_trade(generator):
                    pace.done += self._emit(generator, owed, now_us, batch, since_us)
                else:
                    pace.done += owed  # a resumed symbol goes on at its rate, no burst
                schedule.put_back(pace)
            if batch:
                self._deliver(batch)

    async def _produce_full_speed(self, candidates: Sequence[TradeGenerator]) -> None:
        while True:
            wanted = {s for c in self.connections if c.wants_data for s in c.subscriptions}
            generators = [
                g
                for g in candidates
                if (g.stream in wanted or g.agg_stream in wanted) and self._may_trade(g)
            ]
            if not generators:
                self._demand.clear()
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that
                # races its timeout, and then stop() would wait for this loop forever.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(DEMAND_POLL_SECONDS):
                        await self._demand.wait()
                continue
            now_us, batch = wall_clock_us(), list[Outgoing]()
            for generator in generators:
                self._emit(generator, FULL_SPEED_BATCH, now_us, batch)
            self._deliver(batch)
            # Pace by the slowest reader that still wants data (stalled ones drop frames).
            # A transport offers no awaitable "buffer below N", hence the short poll.
            while any(  # noqa: ASYNC110
                c.wants_data and c.write_buffer_size() > HIGH_WATER_BYTES for c in self.connections
            ):
                await asyncio.sleep(DRAIN_POLL_SECONDS)
            await asyncio.sleep(0)
