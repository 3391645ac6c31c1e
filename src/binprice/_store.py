"""`binprice.connect()` and the `Store` it returns: binprice as a Python library.

One handle, methods named like the commands (the sqlite-utils way). Every answer is a list of
frozen dataclasses with `Decimal` prices and aware UTC datetimes, an empty list when nothing
matched; times may be aware datetimes, naive ones (which mean UTC, as on the command line) or
the strings the command line takes (`"5m ago"`, ISO 8601, epoch seconds or ms). Errors are the
`binprice.errors` tree; deciding what an empty answer means is the caller's business.

    import binprice

    with binprice.connect() as store:            # the embedded server, as the CLI uses
        store.latest(["BTCUSDT"])
        store.range("1h ago", "now", "BTCUSDT")
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Literal, overload

from binprice._args import (
    Duration,
    MarketArg,
    Symbols,
    When,
    as_duration,
    as_time,
    as_time_or_none,
    compress_cut,
    days_cut,
    market_of,
    symbols_of,
)
from binprice.settings import Settings, load_settings

if TYPE_CHECKING:
    import asyncio
    import threading

    import psycopg

    from binprice._options import IngestOptions
    from binprice.charts import Chart
    from binprice.completeness.repair import RepairProgress, RepairResult
    from binprice.db.aggtrades import AggAt, AggTrade
    from binprice.db.candles import Candle, Interval
    from binprice.db.compress import CompressResult
    from binprice.db.gaps import Gap, Verification
    from binprice.db.info import DatabaseInfo
    from binprice.db.migrations import Revision
    from binprice.db.partitions import Partition, PruneResult
    from binprice.db.queries import At, Latest, Range
    from binprice.db.status import Status
    from binprice.embedded import ServerInfo, StopResult
    from binprice.events import IngestEvent
    from binprice.exchange.protocol import SeriesRecord
    from binprice.export import Format
    from binprice.export_to import ExportPlan
    from binprice.history import FileProgress, ImportEvent, ImportOptions, ImportSummary
    from binprice.ingest.config import IngestConfig
    from binprice.ingest.stats import IngestSummary
    from binprice.kinds import TradeKind
    from binprice.trades import Trades
    from binprice.watch import Snapshot

    #: `kind=` of the questions: the trades (the default) or the aggregate trades.
    OfTrades = Literal["trades", TradeKind.TRADES]
    OfAggregates = Literal["aggTrades", TradeKind.AGG_TRADES]

#: Candles in a chart when the caller does not say (an 80-column terminal's worth).
DEFAULT_CHART_CANDLES = 34
#: How often `ingest(on_tick=...)` is given a summary of the run so far (a live view's refresh).
TICK_SECONDS = 0.25


def connect(url: str | None = None, *, data_dir: Path | None = None) -> Store:
    """A handle on binprice's database.

    `url` is any PostgreSQL URL (or keyword/value string); without one, the same resolution as
    the CLI: `$BINPRICE_DATABASE_URL`, `$DATABASE_URL`, a `.env` in the working directory, else
    the embedded server (started if it is not running; it keeps running). Nothing is read until
    the first question; reads need the schema at head (`store.upgrade()` migrates, and
    `store.ingest()` does so by itself).
    """
    settings = load_settings(url)
    if data_dir is not None:
        settings = Settings(settings.database_url, settings.source, Path(data_dir))
    return Store(settings)


class Store:
    """binprice's database. Use it as a context manager, or call `close()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._url: str | None = None
        self._conn: psycopg.Connection[Any] | None = None

    # --- the connection -------------------------------------------------------------------

    @property
    def url(self) -> str:
        """The database's libpq URL (the embedded server's is started if needed). It may hold
        a password: show it with `binprice.conninfo.redact`."""
        if self._url is None:
            from binprice.db import resolve_url

            self._url = resolve_url(self.settings)
        return self._url

    @property
    def connection(self) -> psycopg.Connection[Any]:
        """The read connection (autocommit), checked once to be at the schema's head."""
        if self._conn is None or self._conn.closed:
            from binprice.db import check_schema, connect

            conn = connect(self.url)
            try:
                check_schema(conn, self.url)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _read(self, call: Callable[[psycopg.Connection[Any]], Any]) -> Any:
        """Run a read; a connection broken mid-query is one DatabaseUnavailableError."""
        import psycopg

        from binprice.db import database_error

        try:
            return call(self.connection)
        except psycopg.OperationalError as exc:
            self.close()
            raise database_error(self.url, exc) from None

    # --- questions ------------------------------------------------------------------------

    @overload
    def latest(
        self, symbols: Symbols = None, *, market: MarketArg = "spot", kind: OfTrades = "trades"
    ) -> list[Latest]: ...
    @overload
    def latest(
        self, symbols: Symbols = None, *, market: MarketArg = "spot", kind: OfAggregates
    ) -> list[AggTrade]: ...
    @overload
    def latest(
        self, symbols: Symbols = None, *, market: MarketArg = "spot", kind: str | TradeKind
    ) -> list[Latest] | list[AggTrade]: ...
    def latest(
        self,
        symbols: Symbols = None,
        *,
        market: MarketArg = "spot",
        kind: str | TradeKind = "trades",
    ) -> list[Latest] | list[AggTrade]:
        """The last trade of each symbol of `market` (every recorded symbol if none are
        given); `kind="aggTrades"`: the last aggregate trade."""
        from binprice.db.queries import latest_prices
        from binprice.kinds import TradeKind, parse_kind

        wanted, chosen = symbols_of(symbols), market_of(market)
        if parse_kind(kind) is TradeKind.AGG_TRADES:
            from binprice.db.aggtrades import latest_aggs

            aggs: list[AggTrade] = self._read(lambda c: latest_aggs(c, wanted, market=chosen))
            return aggs
        result: list[Latest] = self._read(lambda conn: latest_prices(conn, wanted, market=chosen))
        return result

    @overload
    def at(
        self,
        ts: When,
        symbols: Symbols = None,
        *,
        before: bool = False,
        within: Duration | None = None,
        market: MarketArg = "spot",
        kind: OfTrades = "trades",
    ) -> list[At]: ...
    @overload
    def at(
        self,
        ts: When,
        symbols: Symbols = None,
        *,
        before: bool = False,
        within: Duration | None = None,
        market: MarketArg = "spot",
        kind: OfAggregates,
    ) -> list[AggAt]: ...
    @overload
    def at(
        self,
        ts: When,
        symbols: Symbols = None,
        *,
        before: bool = False,
        within: Duration | None = None,
        market: MarketArg = "spot",
        kind: str | TradeKind,
    ) -> list[At] | list[AggAt]: ...
    def at(
        self,
        ts: When,
        symbols: Symbols = None,
        *,
        before: bool = False,
        within: Duration | None = None,
        market: MarketArg = "spot",
        kind: str | TradeKind = "trades",
    ) -> list[At] | list[AggAt]:
        """The trade nearest to `ts` per symbol of `market` (a tie goes to the earlier one);
        `before=True` for the last trade at or before it; `within` leaves out trades farther
        away. `kind="aggTrades"`: the nearest aggregate trade."""
        from binprice.db.queries import price_at
        from binprice.kinds import TradeKind, parse_kind

        moment, wanted, chosen = as_time(ts), symbols_of(symbols), market_of(market)
        limit = as_duration(within) if within is not None else None
        if parse_kind(kind) is TradeKind.AGG_TRADES:
            from binprice.db.aggtrades import agg_at

            aggs: list[AggAt] = self._read(
                lambda c: agg_at(c, moment, wanted, before=before, within=limit, market=chosen)
            )
            return aggs
        result: list[At] = self._read(
            lambda conn: price_at(conn, moment, wanted, before=before, within=limit, market=chosen)
        )
        return result

    def range(
        self,
        start: When,
        end: When | None = None,
        symbols: Symbols = None,
        *,
        market: MarketArg = "spot",
        kind: str | TradeKind = "trades",
    ) -> list[Range]:
        """Open, high, low, close (with when), trades, volume and VWAP in `[start, end)` per
        symbol of `market`; `end` defaults to now. `kind="aggTrades"`: from the aggregate
        trades (`trades` then counts the trades they merge)."""
        from binprice.db.queries import price_range
        from binprice.kinds import TradeKind, parse_kind

        lo, hi, wanted = as_time(start), as_time(end or "now"), symbols_of(symbols)
        chosen = market_of(market)
        query = price_range
        if parse_kind(kind) is TradeKind.AGG_TRADES:
            from binprice.db.aggtrades import agg_range as query
        result: list[Range] = self._read(lambda conn: query(conn, lo, hi, wanted, market=chosen))
        return result

    def candles(
        self,
        symbols: Symbols,
        interval: str | Interval,
        start: When | None = None,
        end: When | None = None,
        *,
        market: MarketArg = "spot",
        kind: str | TradeKind = "trades",
    ) -> list[Candle]:
        """Klines in `[start, end)` with Binance's interval names and UTC alignment; an
        interval without trades has no candle. Without `start`, the last `DEFAULT_CANDLES`
        candles up to `end` (default now). `kind="aggTrades"`: from the aggregate trades, by
        the server (`trades` counts the trades they merge)."""
        from binprice.db.candles import DEFAULT_CANDLES, candles, parse_interval
        from binprice.kinds import TradeKind, parse_kind

        if parse_kind(kind) is TradeKind.AGG_TRADES:
            from binprice.db.aggtrades import agg_candles as candles

        chosen = parse_interval(interval) if isinstance(interval, str) else interval
        hi, wanted = as_time(end or "now"), symbols_of(symbols)
        lo = as_time(start) if start is not None else chosen.opens_before(hi, DEFAULT_CANDLES)
        where = market_of(market)
        result: list[Candle] = self._read(
            lambda conn: _one_snapshot(conn, candles, wanted, chosen, lo, hi, market=where)
        )
        return result

    def trades(
        self, symbol: str, start: When, end: When | None = None, *, market: MarketArg = "spot"
    ) -> Trades:
        """Every trade of `symbol` of `market` in `[start, end)`, in time order, read through a
        server-side cursor (constant memory). `.to_pandas()` / `.to_polars()` with the extras."""
        from binprice.trades import Trades

        (wanted,) = symbols_of([symbol])
        lo, hi = as_time(start), as_time(end or "now")
        return Trades(lambda: self.connection, wanted, lo, hi, market_of(market))

    def export(
        self,
        symbols: Symbols,
        start: When,
        end: When | None,
        fmt: str | Format,
        out: IO[bytes] | str | os.PathLike[str],
        *,
        progress: Callable[[int], None] | None = None,
        on_plan: Callable[[ExportPlan], None] | None = None,
        on_file: Callable[[Path], None] | None = None,
        market: MarketArg = "spot",
        kind: str | TradeKind = "trades",
    ) -> int:
        """`binprice export`: write every trade of the window as csv, ndjson, parquet or
        Binance's archive CSV to `out` (a binary stream, or a path: a file written whole or not
        at all, or for `binance` a directory of Binance's daily zips); return how many.

        `on_plan` learns the symbols without trades and the total before the first row;
        `progress` gets the rows written so far; `on_file` each daily file of a directory.
        NotFoundError when no symbol has a trade in the window. `kind="aggTrades"`: the
        aggregate trades, as csv, ndjson or the market's aggTrades archive CSV."""
        from binprice.export import Format, parse_format
        from binprice.export_to import export_to
        from binprice.kinds import parse_kind

        chosen = fmt if isinstance(fmt, Format) else parse_format(fmt)
        lo, hi, wanted = as_time(start), as_time(end or "now"), symbols_of(symbols)
        where = market_of(market)
        written: int = self._read(
            lambda conn: _one_snapshot(
                conn,
                export_to,
                wanted,
                lo,
                hi,
                chosen,
                out=out,
                progress=progress,
                on_plan=on_plan,
                on_file=on_file,
                market=where,
                kind=parse_kind(kind),
            )
        )
        return written

    def chart(
        self,
        symbol: str,
        start: When,
        end: When | None = None,
        *,
        interval: str | None = None,
        max_candles: int = DEFAULT_CHART_CANDLES,
        market: MarketArg = "spot",
    ) -> Chart:
        """`binprice chart`'s data: candles at `interval` (default: the one that fits
        `max_candles`), or, for a window inside one candle, its trades as a price path."""
        from binprice.charts import chart_data

        lo, hi, where = as_time(start), as_time(end or "now"), market_of(market)
        result: Chart = self._read(
            lambda conn: chart_data(
                conn, symbol, lo, hi, interval, max_candles=max_candles, market=where
            )
        )
        return result

    def watch(
        self,
        symbols: Symbols = None,
        *,
        window: Duration = "1h",
        every: Duration = "1s",
        count: int | None = None,
        market: MarketArg = "spot",
    ) -> Iterator[Snapshot]:
        """`binprice watch`: a snapshot of each symbol (every recorded one if none are given)
        now and then every `every` (`count` of them, or for ever): last price, change over
        `window`, trades per second, the last minutes' closes. Checked before the first poll."""
        from binprice.watch import watch

        def given(value: Duration) -> timedelta | str:  # a string is quoted back if refused
            return value if isinstance(value, str) else as_duration(value)

        return watch(
            lambda: self.connection,
            symbols_of(symbols),
            window=given(window),
            every=given(every),
            count=count,
            market=market_of(market),
        )

    # --- completeness -----------------------------------------------------------------------

    def gaps(
        self, symbols: Symbols = None, *, market: MarketArg = "spot", kind: str = "trades"
    ) -> list[Gap]:
        """The recorded gaps of `market` and their state: of trade ids, or with
        `kind="aggTrades"` of aggregate ids (`ingest --stream aggTrade`)."""
        from binprice.db.gaps import list_gaps
        from binprice.kinds import parse_kind

        wanted, chosen, of = symbols_of(symbols), market_of(market), parse_kind(kind)
        result: list[Gap] = self._read(lambda conn: list_gaps(conn, wanted, market=chosen, kind=of))
        return result

    def verify(
        self,
        symbols: Symbols = None,
        *,
        start: When | None = None,
        end: When | None = None,
        against_exchange: bool = False,
        exchange: str = "binance",
        rest_url: str | None = None,
        market: MarketArg = "spot",
        kind: str = "trades",
        api_key: str | None = None,
    ) -> Verification:
        """Check the stored ids of `market` (whole UTC minutes) against the recorded gaps; with
        `against_exchange` (or a `rest_url`) also each symbol's tail up to the exchange's newest
        trade, asked of `rest_url`, else of the `exchange` preset's REST URL of the market.
        `api_key` (futures) lets recorded holes be asked about again (`historicalTrades`). With
        `kind="aggTrades"`, the stored aggregate ids of `market` against the aggregate gaps."""
        from binprice.kinds import parse_kind

        lo, hi, wanted = as_time_or_none(start), as_time_or_none(end), symbols_of(symbols)
        chosen, of = market_of(market), parse_kind(kind)
        if against_exchange or rest_url is not None:
            from binprice.completeness.oneoff import verify_with_exchange

            return verify_with_exchange(
                self._checked_url,
                self.settings.data_dir,
                exchange,
                rest_url,
                wanted,
                start=lo,
                end=hi,
                market=chosen,
                kind=of,
                api_key=api_key,
            )
        from binprice.db.gaps import verify_gaps

        result: Verification = self._read(
            lambda conn: verify_gaps(conn, wanted, start=lo, end=hi, market=chosen, kind=of)
        )
        return result

    def repair(
        self,
        symbols: Symbols = None,
        *,
        start: When | None = None,
        end: When | None = None,
        exchange: str = "binance",
        rest_url: str | None = None,
        progress: Callable[[RepairProgress], None] | None = None,
        market: MarketArg = "spot",
        api_key: str | None = None,
        kind: str = "trades",
    ) -> RepairResult:
        """Record every unaccounted hole (and missing tail) of `market` as an open gap and
        fetch every open gap from REST now: from `rest_url`, else from the `exchange` preset's
        REST URL of the market. On a futures market `historicalTrades` needs `api_key`:
        without one, ids older than the newest trades stay open (`RepairResult.needs_key`).
        With `kind="aggTrades"`, the aggregate ids, through `aggTrades?fromId=` (no key)."""
        from binprice.completeness.oneoff import repair_now
        from binprice.kinds import parse_kind

        return repair_now(
            self._checked_url,
            self.settings.data_dir,
            exchange,
            rest_url,
            symbols,
            start=start,
            end=end,
            progress=progress,
            market=market_of(market),
            api_key=api_key or None,
            kind=parse_kind(kind),
        )

    def _checked_url(self) -> str:
        """The URL, once the read connection checked the schema (before the exchange is asked)."""
        self.connection  # noqa: B018 - the schema check
        return self.url

    # --- storage ----------------------------------------------------------------------------

    def status(self, symbols: Symbols = None, *, market: MarketArg = "spot") -> Status:
        """Per symbol of `market` (default: every one with trades or open gaps) the first and
        last stored trade, the count, open gaps and the last trade's age; the database's size,
        its partitions and where history was pruned. Reads the rollup and probes indexes."""
        from binprice.db.status import database_status

        wanted, chosen = symbols_of(symbols), market_of(market)
        result: Status = self._read(
            lambda conn: _one_snapshot(conn, database_status, wanted, market=chosen)
        )
        return result

    def partitions(self) -> list[Partition]:
        """The partitions of trades, oldest month first, DEFAULT last: bounds, estimated rows
        (as of the last ANALYZE), size."""
        from binprice.db.partitions import list_partitions

        result: list[Partition] = self._read(list_partitions)
        return result

    def ensure_partitions(self) -> list[str]:
        """Make this month's partition of trades and the next ones (rows waiting in DEFAULT
        move to their month); the names made. DatabaseBusyError behind a long query."""
        from binprice.db.partitions import ensure_ahead

        result: list[str] = self._read(ensure_ahead)
        return result

    def plan_prune(self, before: When) -> PruneResult:
        """What `prune(before)` would drop now; changes nothing."""
        from binprice.db.partitions import plan_prune

        cut = as_time(before)
        result: PruneResult = self._read(lambda conn: plan_prune(conn, cut))
        return result

    def prune(self, before: When, *, keep_rollup: bool = False) -> PruneResult:
        """`binprice db prune`: drop every month of trades that ended at or before `before`
        (and their rollup minutes unless `keep_rollup`), recording the cut; what was dropped.
        DatabaseBusyError, with nothing dropped, when other sessions hold trades too long."""
        from binprice.db.partitions import prune

        cut = as_time(before)
        result: PruneResult = self._read(lambda conn: prune(conn, cut, keep_rollup=keep_rollup))
        return result

    def compress(
        self,
        before: When | None = None,
        *,
        dry_run: bool = False,
        settle: Duration = "3d",
        days_before: When | Duration | None = None,
        now: datetime | None = None,
    ) -> CompressResult:
        """`binprice db compress`: every closed month that ended at or before `before` and at
        least `settle` before `now` (the current month never) becomes blocks of trade_blocks,
        one transaction each; late rows of compressed months merge into their blocks. With
        `days_before` (a time, or a duration before `now`), the UTC days before its day of the
        months still holding rows (the live month) become blocks too, one transaction a day,
        while live writers go on. With `dry_run`, the plan (trades, estimated bytes); nothing
        changes."""
        from binprice.db.compress import compress, plan_compress
        from binprice.db.compress_days import compress_with_days, plan_with_days

        cut = compress_cut(before, settle, now)
        result: CompressResult
        if days_before is None:
            if dry_run:
                result = self._read(lambda conn: plan_compress(conn, cut))
            else:
                result = self._read(lambda conn: compress(conn, cut))
            return result
        days = days_cut(days_before, now)
        if dry_run:
            result = self._read(lambda conn: plan_with_days(conn, cut, days))
        else:
            result = self._read(lambda conn: compress_with_days(conn, cut, days))
        return result

    # --- capture and history ----------------------------------------------------------------

    def ingest(
        self,
        symbols: Symbols = None,
        options: IngestOptions | None = None,
        *,
        stop: threading.Event | None = None,
        on_event: Callable[[IngestEvent], None] | None = None,
        on_tick: Callable[[IngestSummary], None] | None = None,
        on_stored: Callable[[list[SeriesRecord]], None] | None = None,
        **changes: Any,
    ) -> IngestSummary:
        """Capture trades as `binprice ingest` does (the schema migrated to head, the spool in
        the data directory) until `stop` is set, `duration` passes or `max_trades` are stored.
        `options` (or single options as keywords: `duration="10m"`) as `IngestOptions`.
        Runs its own event loop (in a thread if one is already running, as in a notebook)."""
        from binprice._sync import run_sync

        coro = self.ingest_async(
            symbols,
            options,
            on_event=on_event,
            on_tick=on_tick,
            on_stored=on_stored,
            _thread_stop=stop,
            **changes,
        )
        return run_sync(coro)

    async def ingest_async(
        self,
        symbols: Symbols = None,
        options: IngestOptions | None = None,
        *,
        stop: asyncio.Event | None = None,
        on_event: Callable[[IngestEvent], None] | None = None,
        on_tick: Callable[[IngestSummary], None] | None = None,
        on_stored: Callable[[list[SeriesRecord]], None] | None = None,
        _thread_stop: threading.Event | None = None,
        **changes: Any,
    ) -> IngestSummary:
        """`ingest`, on the caller's event loop, stopped by an `asyncio.Event`; with `since`,
        the public archives from that day are imported first (then REST up to now).

        `on_event` gets every event of the run, the schema check first; `on_tick` a summary of the
        run so far every `TICK_SECONDS` (a live view); `on_stored` each committed batch."""
        import asyncio

        from binprice.ingest.claimed import run_claimed

        # Everything the caller asked for is checked before the database is touched.
        config = self.ingest_config(symbols, options, **changes)
        migrated = await asyncio.to_thread(self.upgrade_if_behind)  # may start the server
        return await run_claimed(
            config,
            self.url,
            self.settings.data_dir,
            migrated=migrated,
            tick_seconds=TICK_SECONDS,
            stop=stop,
            thread_stop=_thread_stop,
            on_event=on_event,
            on_tick=on_tick,
            on_stored=on_stored,
        )

    def ingest_config(
        self, symbols: Symbols = None, options: IngestOptions | None = None, **changes: Any
    ) -> IngestConfig:
        """The `IngestConfig` of a run, checked (before any database is touched); its spool is
        set by `ingest_async`, in this store's data directory."""
        from binprice.ingest.from_options import ingest_config

        return ingest_config(self.settings.data_dir, symbols, options, changes)

    def import_history(
        self,
        options: ImportOptions | None = None,
        *,
        stop: threading.Event | None = None,
        on_event: Callable[[ImportEvent], None] | None = None,
        on_progress: Callable[[FileProgress], None] | None = None,
        on_migrated: Callable[[str], None] | None = None,
        **fields: Any,
    ) -> ImportSummary:
        """`binprice import`: every past trade from Binance's public archives, verified.
        `options` (or its fields as keywords: `symbols=("BTCUSDT",), start=date(2024, 1, 1)`)
        as `binprice.ImportOptions`; the downloads spool and the exchange's refusals are the
        data directory's unless the options name others."""
        from binprice._sync import run_sync, stoppable

        return run_sync(
            stoppable(
                stop,
                lambda event: self.import_history_async(
                    options,
                    stop=event,
                    on_event=on_event,
                    on_progress=on_progress,
                    on_migrated=on_migrated,
                    **fields,
                ),
            )
        )

    async def import_history_async(
        self,
        options: ImportOptions | None = None,
        *,
        stop: asyncio.Event | None = None,
        on_event: Callable[[ImportEvent], None] | None = None,
        on_progress: Callable[[FileProgress], None] | None = None,
        on_migrated: Callable[[str], None] | None = None,
        **fields: Any,
    ) -> ImportSummary:
        """`import_history` on the caller's event loop, stopped by an `asyncio.Event` (the
        chunk being loaded is committed; the next run resumes there). `on_migrated` gets where
        the database is when this run migrated it to the newest schema."""
        from binprice.history._in_data_dir import import_migrated, options_in

        chosen = options_in(self.settings.data_dir, options, fields)
        return await import_migrated(
            chosen,
            self.upgrade_if_behind,
            lambda: self.url,
            stop=stop,
            on_event=on_event,
            on_progress=on_progress,
            on_migrated=on_migrated,
        )

    # --- the schema -------------------------------------------------------------------------

    def revision(self) -> str | None:
        """The database's schema revision (None: no binprice schema yet)."""
        from binprice.db import connect, current_revision

        with connect(self.url) as conn:
            return current_revision(conn)

    def upgrade(self, revision: str = "head") -> str | None:
        """Migrate to `revision` (default: the newest); return the revision reached."""
        from binprice.db.migrations import upgrade

        self.close()
        return upgrade(self.url, revision)

    def downgrade(self, revision: str) -> str | None:
        """Migrate down to `revision` (an id, `-N` steps, or `base`: every binprice table and
        the trades in them dropped); return the revision reached."""
        from binprice.db.migrations import downgrade

        self.close()
        return downgrade(self.url, revision)

    @property
    def head(self) -> str:
        """The newest schema revision this binprice knows."""
        from binprice.db import SCHEMA_HEAD

        return SCHEMA_HEAD

    def schema_history(self) -> list[Revision]:
        """`binprice db history`: the schema revisions, newest first, marking head and the
        database's current one."""
        from binprice.db.migrations import history

        return history(self.revision())

    @property
    def location(self) -> str:
        """Where the database is, for messages: `host:port/db` or the socket directory (never
        the password)."""
        from binprice.db import describe

        return describe(self.url)

    def upgrade_if_behind(self) -> bool:
        """Migrate to head unless already there; True if it migrated."""
        from binprice.db import SCHEMA_HEAD

        if self.revision() == SCHEMA_HEAD:
            return False
        self.upgrade()
        return True

    def info(self) -> DatabaseInfo:
        """Where the database is, its server version, revision and size (an embedded server
        that is stopped is described, not started)."""
        from binprice.db.info import database_info

        return database_info(self.settings)

    # --- the embedded server ----------------------------------------------------------------

    def start_server(self) -> ServerInfo:
        """`binprice db start`: the embedded PostgreSQL server, started (and created) if it is
        not running; it keeps running. BinpriceError when another database is configured."""
        from binprice import embedded

        self._require_embedded()
        return embedded.ensure_server(self.settings.data_dir)

    def stop_server(self) -> StopResult:
        """`binprice db stop`: stop the embedded server if it runs (a stale pid file naming
        another process is removed, that process left alone)."""
        from binprice import embedded

        self._require_embedded()
        self.close()
        return embedded.stop_server(self.settings.data_dir)

    def _require_embedded(self) -> None:
        from binprice.errors import BinpriceError

        if not self.settings.embedded:
            raise BinpriceError(
                f"a database is configured ({self.settings.source}); `db start`/`db stop` "
                "manage only the embedded server"
            )


def _one_snapshot(
    conn: psycopg.Connection[Any], read: Callable[..., Any], *args: Any, **kw: Any
) -> Any:
    """`read(conn, ...)` in one REPEATABLE READ READ ONLY transaction: a read that combines
    rows and blocks over several statements sees every day once, whatever compresses meanwhile."""
    from binprice.db.catalog import snapshot

    with snapshot(conn):
        return read(conn, *args, **kw)
