"""The ingest run: readers → tracker → bounded buffer → batch writers, owned by one TaskGroup.

Who owns what:

- the `Fleet`'s `ConnectionGroup`s (one per ≤1024 streams, times `--redundancy`; with `--all`
  growing and shrinking as the `Listing` changes) read frames and hand trades to the
  `Tracker`, which drops duplicates and reports id jumps to the `GapKeeper`;
- the `GapKeeper` owns every gap: its row, its backfill from REST, its settlement;
- the `Reconciler` asks the exchange for newest ids where the stream cannot show a gap;
- the `Sink`'s writers commit batches from the `TradeBuffer`, which spills to this run's own
  `Spool` when the database lags, and records what it cannot spool as dropped ids;
- the `Recorder` counts and reports what happens (every part calls it); health, metrics and
  the summary read its snapshot.

Shutdown order (stop event, --duration, --max-trades): readers stop reading; then, at the same
time, the exchange is asked for the tail each symbol is missing and the writers commit what was
received; then the gap rows go in and filled gaps are settled. If the database is down while
stopping, what cannot be committed within the grace period stays in the spool and is committed
by the next run. The whole stop fits in the CLI's 5 s budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress

import aiohttp
import psycopg

from binprice.completeness.gapkeeper import GapKeeper
from binprice.completeness.reconcile import Reconciler
from binprice.db.aggwriter import writer_class
from binprice.db.writer import TradeWriter
from binprice.errors import BinpriceError, ConfigError, DatabaseError
from binprice.events import Emit, EventKind, IngestEvent, Severity
from binprice.exchange.bans import BanBook
from binprice.exchange.endpoints import market_api
from binprice.exchange.protocol import (
    SeriesRecord,
    agg_stream_name,
    decode_agg_frame,
    frame_decoder,
    stream_name,
)
from binprice.exchange.rest import RestClient
from binprice.exchange.stream import (
    CLOSE_TIMEOUT_SECONDS,
    HANDSHAKE_TIMEOUT_SECONDS,
    ConnectionGroup,
    StreamPolicy,
)
from binprice.ingest.ahead import ensure_months_ahead, keep_months_ahead
from binprice.ingest.buffer import TradeBuffer
from binprice.ingest.compressing import keep_compressing
from binprice.ingest.config import REDUNDANT_GRACE_SECONDS, IngestConfig
from binprice.ingest.fleet import Fleet
from binprice.ingest.health import RunProbe
from binprice.ingest.listing import Listing, names
from binprice.ingest.recorder import Phase, Recorder
from binprice.ingest.resume import resume
from binprice.ingest.sink import Sink
from binprice.ingest.spool import Spool, SpoolError
from binprice.ingest.stats import IngestSummary
from binprice.ingest.tracker import Tracker
from binprice.kinds import TradeKind

#: How long a stop waits for the stream readers to close their connections (a close frame the
#: exchange never answers must not hold the stop; what they received is in the tracker) ...
READERS_DEADLINE_SECONDS = CLOSE_TIMEOUT_SECONDS
#: ... for the last commits before leaving the rest to the spool (Ctrl+C must end the run
#: within 5 s whatever the database does) ...
SHUTDOWN_DEADLINE_SECONDS = 2.25
#: ... for the exchange's newest ids (the tail each symbol is missing) ...
TAIL_DEADLINE_SECONDS = 1.5
#: ... for fetching the gaps found before the stop, before those two (the rest are fetched by
#: the next run) ...
STOP_BACKFILL_DEADLINE_SECONDS = 1.5
#: ... and for recording the gaps and whether the ones it backfilled are filled.
SETTLE_DEADLINE_SECONDS = 1.0


async def run_ingest(
    config: IngestConfig,
    database_url: str,
    *,
    stop: asyncio.Event | None = None,
    on_event: Callable[[IngestEvent], None] | None = None,
    recorder: Recorder | None = None,
    policy: StreamPolicy | None = None,
    on_stored: Callable[[list[SeriesRecord]], None] | None = None,
) -> IngestSummary:
    """Ingest until `stop` is set, `config.duration` passes or `config.max_trades` are stored.

    `recorder` (one per run; a new one by default) counts what happens and reports it to
    `on_event`; read it while the run goes on with `recorder.snapshot()`."""
    recorder = recorder if recorder is not None else Recorder()
    recorder.records = f"{config.kind.label}s"
    if on_event is not None:
        recorder.listen(on_event)
    stop = stop if stop is not None else asyncio.Event()
    policy = policy if policy is not None else StreamPolicy.of_market(config.market)
    emit = recorder.event
    spool = _open_spool(config, emit)
    buffer = TradeBuffer(spool, config.memory_limit, recorder, config.market, config.kind)
    grace = REDUNDANT_GRACE_SECONDS if config.redundancy > 1 else 0.0
    gaps = GapKeeper(
        database_url,
        buffer,
        recorder,
        backfill_max=config.backfill_max,
        grace=grace,
        market=config.market,
        kind=config.kind,
    )
    probe = RunProbe(recorder, buffer, config.health_threshold, gaps)
    try:
        async with _serving(config, probe, emit):
            if config.since is not None:
                recorder.phase(Phase.IMPORTING)
                await _import_history(config, database_url, stop, emit)
                if stop.is_set():
                    recorder.stopped("stopped during the archive import, before streaming")
                    return recorder.summary()
                recorder.phase(Phase.STARTING)
            run = _Run(config, database_url, stop, recorder, policy, probe=probe)
            try:
                return await run.run(on_stored)
            except BaseExceptionGroup as group:
                raise _first_error(group) from None
    finally:
        buffer.spill()  # anything not committed survives in the spool for the next run
        if spool is not None:
            spool.close()


async def _import_history(config: IngestConfig, url: str, stop: asyncio.Event, emit: Emit) -> None:
    """`--since`: every trade from the archives (verified), the unpublished days from REST,
    so the stream starts where history ends: one id line from `since` to live. Of aggregate
    trades (`--stream aggTrade`): the aggTrades archives; the days after them are the gap of
    aggregate ids the run opens at its first aggregate, fetched through `aggTrades?fromId=`
    (no API key on any market)."""
    from datetime import UTC, datetime, timedelta

    from binprice.history import ImportEvent, ImportOptions, import_history

    assert config.since is not None
    tomorrow = datetime.now(UTC).date() + timedelta(days=1)  # today counts as unpublished

    def relay(event: ImportEvent) -> None:
        kind = EventKind.HISTORY_PROBLEM if event.severity > Severity.INFO else EventKind.HISTORY
        emit(kind, f"{event.symbol}: {event.message}")

    # The days the archive has not published come from historicalTrades, which needs the API
    # key on the futures markets: without one the stream's first trade opens that gap, and
    # the backfill takes what the newest trades hold and says the rest needs the key.
    keyless = market_api(config.market).historical_needs_key and not config.api_key
    aggregates = config.kind is TradeKind.AGG_TRADES
    options = ImportOptions(
        symbols=config.symbols,
        start=config.since,
        end=tomorrow,
        archive_url=config.archive_url,
        spool_dir=config.downloads_dir,
        bans_file=config.bans_file,
        rest_url=config.rest_url,
        rest_tail=not (keyless or aggregates),
        market=config.market,
        api_key=config.api_key,
        kind=config.kind,
    )
    summary = await import_history(options, url, stop=stop, on_event=relay)
    files = sum(len(s.files) for s in summary.symbols)
    failed = len(summary.failed)
    kind = EventKind.HISTORY_PROBLEM if failed else EventKind.HISTORY
    refused = f", {failed} refused or missing (recorded as gaps)" if failed else ""
    emit(
        kind,
        f"history since {config.since.isoformat()}: {files} archive files{refused}; "
        "streaming from here",
    )


@asynccontextmanager
async def _serving(config: IngestConfig, probe: RunProbe, emit: Emit) -> AsyncIterator[None]:
    """`--metrics-port`: serve /metrics and /healthz for as long as the run lasts."""
    if config.metrics_port is None:
        yield
        return
    from binprice.ingest.metrics import MetricsServer

    async with MetricsServer(probe, config.metrics_host, config.metrics_port) as server:
        emit(EventKind.METRICS, f"metrics at {server.url}/metrics, health at {server.url}/healthz")
        yield


def _open_spool(config: IngestConfig, emit: Emit) -> Spool | None:
    try:
        spool = Spool.open(config.spool_dir)
    except SpoolError as exc:
        emit(
            EventKind.DROPPED,
            f"{exc}; running without a spool: trades that cannot be "
            "committed in time are recorded as gaps and fetched again later",
        )
        return None
    if spool.adopted_chunks:
        emit(
            EventKind.SPOOL_ADOPTED,
            f"taking over {spool.adopted_chunks} spool chunks a stopped or crashed run left "
            "behind; their trades are committed first",
        )
    return spool


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a user should see from a TaskGroup failure: ours first, else the first."""
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    return next((e for e in leaves if isinstance(e, BinpriceError)), leaves[0])


class _Run:
    """One ingest run's parts, built in order; `run` owns their tasks."""

    def __init__(
        self,
        config: IngestConfig,
        url: str,
        stop: asyncio.Event,
        recorder: Recorder,
        policy: StreamPolicy,
        *,
        probe: RunProbe,
    ) -> None:
        self.config = config
        self.url = url
        self.stop = stop
        self.recorder = recorder
        self.emit = recorder.event
        self.policy = policy
        self.buffer = buffer = probe.buffer
        assert probe.gaps is not None
        self.gaps = probe.gaps
        self.tracker = Tracker(
            self.gaps, buffer, recorder, max_trades=config.max_trades, limit_reached=stop
        )
        #: The symbols carried: the named ones, or (`--all`) what the exchange lists.
        self.symbols = list(config.symbols)
        self.listing: Listing | None = None
        self.probe = probe

    async def run(self, on_stored: Callable[[list[SeriesRecord]], None] | None) -> IngestSummary:
        # The session timeout bounds WebSocket handshakes; REST calls set their own.
        timeout = aiohttp.ClientTimeout(total=HANDSHAKE_TIMEOUT_SECONDS)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session:
                bans = None if self.config.bans_file is None else BanBook(self.config.bans_file)
                rest = RestClient(
                    session,
                    self.config.rest_url,
                    bans=bans,
                    market=self.config.market,
                    api_key=self.config.api_key,
                )
                self.probe.rest = rest
                if self.config.all_symbols:
                    self.listing = Listing(
                        rest, self.config.quotes, self.emit, interval=self.config.listing_interval
                    )
                # Start-up (the database, the exchange's symbol check, the resume) may wait
                # on a slow server: a stop must not wait for it.
                writer = await _unless_stopped(self._prepare(rest), self.stop)
                if writer is None:
                    self.recorder.stopped("stopped before streaming began; nothing stored")
                    return self.recorder.summary()
                sink = Sink(
                    writer,
                    self.url,
                    self.buffer,
                    self.recorder,
                    self.config,
                    gaps=self.gaps,
                    on_stored=on_stored,
                )
                try:
                    reconciler = Reconciler(
                        self.tracker,
                        rest,
                        self.recorder,
                        quiet_after=self.config.quiet_period,
                        kind=self.config.kind,
                    )
                    await self._stream(session, rest, reconciler, sink)
                finally:
                    await sink.close()
        finally:
            await self.gaps.close()
        summary = self.recorder.summary()
        self.recorder.stopped(f"stored {summary.stored:,} {self.recorder.records}")
        return summary

    async def _prepare(self, rest: RestClient) -> TradeWriter:
        """Connect, settle the symbols with the exchange, and resume where the last runs left."""
        config = self.config
        writer = await writer_class(config.kind).connect(self.url, config.market)
        try:
            await ensure_months_ahead(self.url, self.emit)
            if self.listing is not None:
                self.symbols = await self.listing.current()
                if not self.symbols:
                    raise ConfigError(f"the exchange lists no symbol as {self.listing.describe()}")
                self.emit(
                    EventKind.LISTING,
                    f"{self.listing.describe()}: {len(self.symbols)} "
                    f"symbols ({names(self.symbols)})",
                )
            else:
                await rest.validate_symbols(config.symbols)
            last_ids = await self._last_trades(writer, self.symbols)
            self.recorder.carrying(len(self.symbols))
            spooled = self.buffer.spool.peek() if self.buffer.spool is not None else ()
            await resume(
                self.url,
                self.tracker,
                self.gaps,
                self.recorder,
                symbols=self.symbols,
                last_stored=last_ids,
                spooled=spooled,
            )
        except BaseException:
            await writer.close()
            raise
        return writer

    def _fleet(self, session: aiohttp.ClientSession, reconciler: Reconciler) -> Fleet:
        config = self.config

        aggregates = config.kind is TradeKind.AGG_TRADES

        def make(symbols: list[str], source: int, replica: int) -> ConnectionGroup:
            return ConnectionGroup(
                session,
                config.ws_url,
                symbols,
                self.tracker,
                self.recorder,
                stop=self.stop,
                policy=self.policy,
                reconciler=reconciler,
                source=source,
                replica=replica,
                replicas=config.redundancy,
                capacity=config.streams_per_connection,
                decode=decode_agg_frame if aggregates else frame_decoder(config.market),
                stream=agg_stream_name if aggregates else stream_name,
            )

        return Fleet(
            make, self.recorder, replicas=config.redundancy, capacity=config.streams_per_connection
        )

    async def _follow_listing(self, fleet: Fleet, reconciler: Reconciler) -> None:
        """`--all`: carry what the exchange starts listing, drop what it stops."""
        assert self.listing is not None

        async def add(symbols: list[str]) -> None:
            writer = await writer_class(self.config.kind).connect(self.url, self.config.market)
            try:
                last_ids = await self._last_trades(writer, symbols)
            finally:
                await writer.close()
            # As at start: after the last stored id, open gaps queued (the spool of this run
            # is not read again: what it holds is stored anyway, and a gap it would have
            # closed is fetched from REST).
            await resume(
                self.url,
                self.tracker,
                self.gaps,
                self.recorder,
                symbols=symbols,
                last_stored=last_ids,
                spooled=(),
            )
            for symbol in symbols:
                reconciler.track(symbol)
            fleet.add(symbols)
            self.recorder.carrying(len(fleet.carried()))

        async def remove(symbols: list[str]) -> None:
            fleet.remove(symbols)
            self.recorder.carrying(len(fleet.carried()))
            # What it traded up to its halt is recorded (and fetched) before it is let go.
            with suppress(BinpriceError):
                await reconciler.check(symbols, " before it stopped trading")
            for symbol in symbols:
                reconciler.untrack(symbol)
                self.tracker.stop(symbol)

        await self.listing.follow(fleet.carried, add, remove)

    async def _last_trades(self, writer: TradeWriter, symbols: list[str]) -> dict[str, int]:
        """The last stored id per symbol (their times go to the recorder, for their age)."""
        last = await writer.last_trades(tuple(symbols))
        self.recorder.stored_before({s: time_ms for s, (_, time_ms) in last.items()})
        return {s: trade_id for s, (trade_id, _) in last.items()}

    async def _stream(
        self,
        session: aiohttp.ClientSession,
        rest: RestClient,
        reconciler: Reconciler,
        sink: Sink,
    ) -> None:
        stop = self.stop
        reading_done = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            write_task = tg.create_task(sink.run(reading_done))
            fleet = self._fleet(session, reconciler)
            fleet.start(tg, self.symbols)
            fetching = tg.create_task(self.gaps.run(rest, sink.writable))
            helpers = [
                fetching,
                tg.create_task(reconciler.run()),
                tg.create_task(keep_months_ahead(self.url, self.emit)),
            ]
            # Trades are compressed by a trade run (aggregates are not compressed).
            after, days = self.config.compress_after, self.config.compress_days_after
            if (after is not None or days is not None) and self.config.kind is TradeKind.TRADES:
                compressing = keep_compressing(self.url, self.emit, after=after, days_after=days)
                helpers.append(tg.create_task(compressing))
            if self.listing is not None:
                helpers.append(tg.create_task(self._follow_listing(fleet, reconciler)))
            if self.config.duration is not None:
                helpers.append(tg.create_task(_stop_after(self.config.duration, stop)))
            self.recorder.phase(Phase.STREAMING)
            try:
                await _until_stopped(stop, fleet.tasks, write_task)
            finally:
                self.recorder.phase(Phase.STOPPING)
            stop.set()
            for task in helpers:
                task.cancel()  # the listing first: no connection opens while they stop
            readers = list(fleet.tasks)
            if readers:
                _, late = await asyncio.wait(readers, timeout=READERS_DEADLINE_SECONDS)
                for task in late:
                    task.cancel()
                if late:
                    await asyncio.wait(late)
            await asyncio.wait([fetching])  # its gap in flight, if any, is queued again
            banned = self._banned_at_stop(rest)
            await self._backfill_before_stop(rest, sink.writable, banned)
            reading_done.set()
            await asyncio.gather(
                self._record_tail(reconciler, banned), _drain(write_task, self.emit)
            )
        await self._finish()

    def _banned_at_stop(self, rest: RestClient) -> bool:
        """True if the exchange refuses REST for longer than the stop may take (a 418 ban or a
        429's Retry-After): asking anyway is what turns a ban of minutes into days. Says so,
        and what the stop therefore leaves open."""
        wait = rest.blocked_for()
        if wait < STOP_BACKFILL_DEADLINE_SECONDS:
            return False
        why = "IP banned" if rest.refused_with == 418 else "rate limited"
        open_gaps = self.gaps.open_gaps()
        count = sum(n for n, _ in open_gaps.values())
        missing = sum(m for _, m in open_gaps.values())
        left = (
            f"{count} gaps ({missing:,} trades) stay recorded as open for the next run"
            if count
            else "no gap is open"
        )
        self.emit(
            EventKind.RATE_LIMITED,
            f"the exchange refuses REST requests for another {wait:.0f} s (HTTP "
            f"{rest.refused_with}, {why}): the stop sends none, so it neither fetches gaps nor "
            f"asks for the tail each symbol is missing; {left}",
        )
        return True

    async def _backfill_before_stop(
        self, rest: RestClient, writable: asyncio.Event, banned: bool
    ) -> None:
        """Fetch the gaps the stream showed before the stop, in bounded time, while the writers
        still run (with the database down, or the exchange refusing REST, they stay recorded
        and open, for the next start)."""
        if writable.is_set() and not banned:
            with suppress(TimeoutError, BinpriceError):
                async with asyncio.timeout(STOP_BACKFILL_DEADLINE_SECONDS):
                    await self.gaps.drain(rest)
        self.gaps.stop_fetching()

    async def _record_tail(self, reconciler: Reconciler, banned: bool) -> None:
        """Ask the exchange what each symbol is missing past the last id seen (bounded)."""
        if banned:
            return
        with suppress(TimeoutError, BinpriceError):
            async with asyncio.timeout(TAIL_DEADLINE_SECONDS):
                await reconciler.tail()

    async def _finish(self) -> None:
        """Record the gaps (the tail ones too) and settle those that are filled, in time."""
        try:
            async with asyncio.timeout(SETTLE_DEADLINE_SECONDS):
                await self.gaps.flush()
                await self.gaps.settle()
        except (TimeoutError, DatabaseError, psycopg.Error):
            pass  # open gaps stay open and are fetched at the next start


async def _drain(write_task: asyncio.Task[None], emit: Emit) -> None:
    """Let the writers commit what was received, but not forever: a database that hangs
    (rather than fails) must not keep a stopping ingest alive. What is not committed in
    time is in the spool (see Sink) and is committed by the next run."""
    done, _ = await asyncio.wait([write_task], timeout=SHUTDOWN_DEADLINE_SECONDS)
    if not done:
        write_task.cancel()
        emit(
            EventKind.SPOOLED,
            "the database did not commit in time; received trades kept in the spool",
        )


async def _until_stopped(
    stop: asyncio.Event, readers: list[asyncio.Task[None]], writer: asyncio.Task[None]
) -> None:
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([stopped, writer, *readers], return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    for task in (writer, *readers):
        if task.done() and not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


async def _unless_stopped(
    work: Coroutine[object, object, TradeWriter], stop: asyncio.Event
) -> TradeWriter | None:
    """The result of `work`, or None if `stop` is set first (`work` is then cancelled)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait([task, stopped], return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        task.cancel()  # a hard abort: the work goes too
        raise
    finally:
        stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    return None


async def _stop_after(seconds: float, stop: asyncio.Event) -> None:
    await asyncio.sleep(seconds)
    stop.set()
