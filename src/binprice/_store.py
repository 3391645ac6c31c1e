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

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, TypedDict, Unpack

from binprice.settings import Settings, load_settings

if TYPE_CHECKING:
    import asyncio
    import threading

    import psycopg

    from binprice.completeness.repair import RepairProgress, RepairResult
    from binprice.db.candles import Candle, Interval
    from binprice.db.gaps import Gap, Verification
    from binprice.db.info import DatabaseInfo
    from binprice.db.partitions import Partition, PruneResult
    from binprice.db.queries import At, Latest, Range
    from binprice.db.status import Status
    from binprice.events import IngestEvent
    from binprice.exchange.bans import BanBook
    from binprice.export import Format
    from binprice.history import ImportSummary
    from binprice.ingest.config import IngestConfig
    from binprice.ingest.stats import IngestSummary
    from binprice.trades import Trades

Symbols = str | Iterable[str] | None
When = datetime | str
Duration = timedelta | str | float


class IngestOptions(TypedDict, total=False):
    """What `Store.ingest` takes besides the symbols; each as the `binprice ingest` option of
    the same name (times as `Duration`, days as `When`)."""

    duration: Duration | None
    max_trades: int | None
    #: A preset (`binance`, `binance-us`, `testnet`, `data-stream`); `ws_url`/`rest_url` win.
    exchange: str
    ws_url: str | None
    rest_url: str | None
    redundancy: int
    quiet_period: Duration
    backfill_max: int | None
    since: When | None
    archive_url: str | None
    #: `--all`: every TRADING symbol (then no symbols may be named), optionally only those
    #: quoted in `quotes`; the listing is re-read every `listing_interval`.
    all_symbols: bool
    quotes: Iterable[str]
    listing_interval: Duration
    #: How long a small batch waits for more trades before it is committed (default 0).
    batch_wait: Duration
    #: Serve Prometheus `/metrics` and `/healthz` on this port of `metrics_host` (default
    #: 127.0.0.1); `/healthz` turns 503 once a wait passes `health_threshold` (default 30 s).
    metrics_port: int | None
    metrics_host: str
    health_threshold: Duration


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


def as_time(value: When, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from what a caller may pass: naive datetimes are UTC."""
    from binprice.timespec import parse_timestamp, truncate_to_ms

    if isinstance(value, str):
        return parse_timestamp(value, now=now)
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return truncate_to_ms(moment.astimezone(UTC))


def as_duration(value: Duration) -> timedelta:
    """A timedelta from a timedelta, seconds, or the CLI's durations (`500ms`, `1h30m`)."""
    from binprice.timespec import parse_duration

    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    return timedelta(seconds=value)


def symbols_of(value: Symbols) -> list[str]:
    """`"BTCUSDT"`, `"btcusdt ethusdt"` or any iterable of symbols, normalised; [] for None."""
    from binprice.symbols import normalize_symbols

    if value is None:
        return []
    return list(normalize_symbols(value if isinstance(value, str) else list(value)))


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

    def latest(self, symbols: Symbols = None) -> list[Latest]:
        """The last trade of each symbol (every recorded symbol if none are given)."""
        from binprice.db.queries import latest_prices

        wanted = symbols_of(symbols)
        result: list[Latest] = self._read(lambda conn: latest_prices(conn, wanted))
        return result

    def at(
        self,
        ts: When,
        symbols: Symbols = None,
        *,
        before: bool = False,
        within: Duration | None = None,
    ) -> list[At]:
        """The trade nearest to `ts` per symbol (a tie goes to the earlier one); `before=True`
        for the last trade at or before it; `within` leaves out trades farther away."""
        from binprice.db.queries import price_at

        moment, wanted = as_time(ts), symbols_of(symbols)
        limit = as_duration(within) if within is not None else None
        result: list[At] = self._read(
            lambda conn: price_at(conn, moment, wanted, before=before, within=limit)
        )
        return result

    def range(self, start: When, end: When | None = None, symbols: Symbols = None) -> list[Range]:
        """Open, high, low, close (with when), trades, volume and VWAP in `[start, end)`;
        `end` defaults to now."""
        from binprice.db.queries import price_range

        lo, hi, wanted = as_time(start), as_time(end or "now"), symbols_of(symbols)
        result: list[Range] = self._read(lambda conn: price_range(conn, lo, hi, wanted))
        return result

    def candles(
        self,
        symbols: Symbols,
        interval: str | Interval,
        start: When,
        end: When | None = None,
    ) -> list[Candle]:
        """Klines in `[start, end)` with Binance's interval names and UTC alignment; an
        interval without trades has no candle."""
        from binprice.db.candles import candles

        lo, hi, wanted = as_time(start), as_time(end or "now"), symbols_of(symbols)
        result: list[Candle] = self._read(lambda conn: candles(conn, wanted, interval, lo, hi))
        return result

    def trades(self, symbol: str, start: When, end: When | None = None) -> Trades:
        """Every trade of `symbol` in `[start, end)`, in time order, read through a
        server-side cursor (constant memory). `.to_pandas()` / `.to_polars()` with the extras."""
        from binprice.trades import Trades

        (wanted,) = symbols_of([symbol])
        return Trades(lambda: self.connection, wanted, as_time(start), as_time(end or "now"))

    def export(
        self,
        symbols: Symbols,
        start: When,
        end: When | None,
        fmt: str | Format,
        out: IO[bytes],
        *,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Write every trade of the window to `out` as csv, ndjson, parquet or Binance's
        archive CSV; return how many."""
        from binprice.export import Format, parse_format, write_trades

        chosen = fmt if isinstance(fmt, Format) else parse_format(fmt)
        lo, hi, wanted = as_time(start), as_time(end or "now"), symbols_of(symbols)
        written: int = self._read(
            lambda conn: write_trades(conn, wanted, lo, hi, chosen, out, progress=progress)
        )
        return written

    # --- completeness -----------------------------------------------------------------------

    def gaps(self, symbols: Symbols = None) -> list[Gap]:
        """The recorded gaps (missing trade ids) and their state."""
        from binprice.db.gaps import list_gaps

        wanted = symbols_of(symbols)
        result: list[Gap] = self._read(lambda conn: list_gaps(conn, wanted))
        return result

    def verify(
        self,
        symbols: Symbols = None,
        *,
        start: When | None = None,
        end: When | None = None,
        rest_url: str | None = None,
    ) -> Verification:
        """Check the stored ids (whole UTC minutes) against the recorded gaps; with `rest_url`
        also each symbol's tail up to the exchange's newest trade."""
        lo = as_time(start) if start is not None else None
        hi = as_time(end) if end is not None else None
        wanted = symbols_of(symbols)
        if rest_url is not None:
            from binprice.completeness.repair import check_against_exchange
            from binprice.exchange.endpoints import rest_base

            self.connection  # noqa: B018 - the schema check, before the exchange is asked
            base = rest_base(rest_url)
            from binprice._sync import run_sync

            return run_sync(check_against_exchange(self.url, base, wanted, start=lo, end=hi,
                                                   bans=self._bans()))  # fmt: skip
        from binprice.db.gaps import verify_gaps

        result: Verification = self._read(lambda conn: verify_gaps(conn, wanted, start=lo, end=hi))
        return result

    def repair(
        self,
        symbols: Symbols = None,
        *,
        start: When | None = None,
        end: When | None = None,
        rest_url: str = "https://api.binance.com",
        progress: Callable[[RepairProgress], None] | None = None,
    ) -> RepairResult:
        """Record every unaccounted hole (and missing tail) as an open gap and fetch every open
        gap from REST now."""
        from binprice._sync import run_sync
        from binprice.completeness.repair import repair
        from binprice.exchange.endpoints import rest_base

        self.connection  # noqa: B018 - the schema check first
        lo = as_time(start) if start is not None else None
        hi = as_time(end) if end is not None else None
        return run_sync(repair(self.url, rest_base(rest_url), symbols_of(symbols), start=lo, end=hi,
                               progress=progress, bans=self._bans()))  # fmt: skip

    def _bans(self) -> BanBook:
        """The exchange's refusals this data directory's processes share (`exchange.bans`)."""
        from binprice.exchange.bans import BanBook

        return BanBook.in_data_dir(self.settings.data_dir)

    # --- storage ----------------------------------------------------------------------------

    def status(self, symbols: Symbols = None) -> Status:
        """Per symbol (default: every one with trades or open gaps) the first and last stored
        trade, the count, open gaps and the last trade's age; the database's size, its
        partitions and where history was pruned. Reads the rollup and probes indexes."""
        from binprice.db.status import database_status

        wanted = symbols_of(symbols)
        result: Status = self._read(lambda conn: database_status(conn, wanted))
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

    # --- capture and history ----------------------------------------------------------------

    def ingest(
        self,
        symbols: Symbols = None,
        *,
        stop: threading.Event | None = None,
        on_event: Callable[[IngestEvent], None] | None = None,
        **options: Unpack[IngestOptions],
    ) -> IngestSummary:
        """Capture trades as `binprice ingest` does (the schema migrated to head, the spool in
        the data directory) until `stop` is set, `duration` passes or `max_trades` are stored.
        Runs its own event loop (in a thread if one is already running, as in a notebook)."""
        from binprice._sync import run_sync

        coro = self.ingest_async(symbols, on_event=on_event, _thread_stop=stop, **options)
        return run_sync(coro)

    async def ingest_async(
        self,
        symbols: Symbols = None,
        *,
        stop: asyncio.Event | None = None,
        on_event: Callable[[IngestEvent], None] | None = None,
        _thread_stop: threading.Event | None = None,
        **options: Unpack[IngestOptions],
    ) -> IngestSummary:
        """`ingest`, on the caller's event loop, stopped by an `asyncio.Event`; with `since`,
        the public archives from that day are imported first (then REST up to now)."""
        import asyncio
        import dataclasses

        from binprice._sync import bridge
        from binprice.ingest import run_ingest
        from binprice.ingest.spool import spool_root

        config = self.ingest_config(symbols, **options)
        await asyncio.to_thread(self.upgrade_if_behind)
        config = dataclasses.replace(config, spool_dir=spool_root(self.settings.data_dir, self.url))
        stop = stop if stop is not None else asyncio.Event()
        watcher = None if _thread_stop is None else bridge(_thread_stop, stop)
        try:
            return await run_ingest(config, self.url, stop=stop, on_event=on_event)
        finally:
            if watcher is not None:
                watcher.cancel()

    def ingest_config(
        self, symbols: Symbols = None, **options: Unpack[IngestOptions]
    ) -> IngestConfig:
        """The `IngestConfig` of a run, checked (before any database is touched); its spool is
        set by `ingest_async`, in this store's data directory."""
        from binprice.errors import ConfigError
        from binprice.exchange.bans import BanBook
        from binprice.exchange.endpoints import endpoints
        from binprice.history import DEFAULT_ARCHIVE_URL
        from binprice.ingest.config import (
            BACKFILL_MAX,
            HEALTH_THRESHOLD_SECONDS,
            LISTING_INTERVAL_SECONDS,
            METRICS_HOST,
            IngestConfig,
        )
        from binprice.symbols import DEFAULT_SYMBOLS, normalize_assets

        unknown = set(options) - set(IngestOptions.__annotations__)
        if unknown:
            raise TypeError(f"unknown ingest options: {', '.join(sorted(unknown))}")
        ws, rest = endpoints(
            options.get("exchange", "binance"), options.get("ws_url"), options.get("rest_url")
        )
        named = tuple(symbols_of(symbols))
        everything = options.get("all_symbols", False)
        if everything and named:
            raise ConfigError("name symbols or use --all, not both")
        duration = options.get("duration")
        since = options.get("since")
        backfill_max = options.get("backfill_max")
        return IngestConfig(
            symbols=() if everything else named or DEFAULT_SYMBOLS,
            ws_url=ws,
            rest_url=rest,
            max_trades=options.get("max_trades"),
            duration=None if duration is None else as_duration(duration).total_seconds(),
            redundancy=options.get("redundancy", 1),
            quiet_period=as_duration(options.get("quiet_period", 60.0)).total_seconds(),
            backfill_max=BACKFILL_MAX if backfill_max is None else backfill_max,
            since=None if since is None else as_time(since).date(),
            archive_url=options.get("archive_url") or DEFAULT_ARCHIVE_URL,
            downloads_dir=self.settings.data_dir / "downloads",
            bans_file=BanBook.in_data_dir(self.settings.data_dir).path,
            all_symbols=everything,
            quotes=normalize_assets(options.get("quotes") or ()),
            listing_interval=as_duration(
                options.get("listing_interval", LISTING_INTERVAL_SECONDS)
            ).total_seconds(),
            flush_interval=as_duration(options.get("batch_wait", 0.0)).total_seconds(),
            metrics_port=options.get("metrics_port"),
            metrics_host=options.get("metrics_host") or METRICS_HOST,
            health_threshold=as_duration(
                options.get("health_threshold", HEALTH_THRESHOLD_SECONDS)
            ).total_seconds(),
        )

    def import_history(self, **options: Any) -> ImportSummary:
        """`binprice import`: every past trade from Binance's public archives, verified
        (options as `binprice.history.ImportOptions`; the downloads spool in the data
        directory)."""
        from binprice._sync import run_sync
        from binprice.exchange.bans import BanBook
        from binprice.history import ImportOptions, import_history

        options.setdefault("spool_dir", self.settings.data_dir / "downloads")
        options.setdefault("bans_file", BanBook.in_data_dir(self.settings.data_dir).path)
        self.upgrade_if_behind()
        return run_sync(import_history(ImportOptions(**options), self.url))

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
