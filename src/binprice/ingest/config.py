"""What an ingest run is asked to do: symbols, endpoints, limits. Frozen and validated."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from binprice.errors import ConfigError
from binprice.exchange.endpoints import DEFAULT_REST_URL, DEFAULT_WS_URL
from binprice.kinds import DEFAULT_KIND, TradeKind
from binprice.markets import DEFAULT_MARKET, Market
from binprice.symbols import DEFAULT_SYMBOLS, MAX_STREAMS_PER_CONNECTION

#: Largest batch one transaction carries; bigger backlogs are written in several.
MAX_BATCH = 10_000
#: Trades held in memory between reader and writer before further ones spill to the disk spool.
MEMORY_LIMIT = 25_000
WRITERS = 2
#: Ids fetched from REST per gap (downtime included); beyond that a gap is recorded as skipped.
#: A million BTCUSDT trades is about six hours (25,000 weight, about 5 minutes of budget).
BACKFILL_MAX = 1_000_000
#: A symbol without a trade for this long is checked against the exchange's newest id.
QUIET_PERIOD = 60.0
#: With redundant connections, a gap on one waits this long for the other to deliver it
#: before REST is asked (it almost always does within milliseconds).
REDUNDANT_GRACE_SECONDS = 2.0
MAX_REDUNDANCY = 3
#: With `--all`, new listings and delistings are noticed within this.
LISTING_INTERVAL_SECONDS = 3600.0
#: `/metrics` and `/healthz` listen here unless told otherwise: only this machine.
METRICS_HOST = "127.0.0.1"
#: `/healthz` turns 503 when trades wait this long uncommitted, or a connection stays down.
HEALTH_THRESHOLD_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """One ingest run. Times are seconds; None means "no limit"."""

    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    #: The market captured: its streams and REST paths (`ws_url`/`rest_url` are its hosts),
    #: its frames, and the `market` of every row written.
    market: Market = DEFAULT_MARKET
    #: `--stream`: what is captured, Binance's trades (`@trade` → `trades`) or its aggregate
    #: trades (`@aggTrade` → `agg_trades`, completeness by aggregate id).
    kind: TradeKind = DEFAULT_KIND
    #: `--api-key` / BINPRICE_API_KEY: sent on the futures' historicalTrades only; never shown
    #: (not in the repr, so not in any log).
    api_key: str | None = field(default=None, repr=False)
    ws_url: str = DEFAULT_WS_URL
    rest_url: str = DEFAULT_REST_URL
    spool_dir: Path = field(default_factory=lambda: Path("spool"))
    #: End after this many new trades were stored.
    max_trades: int | None = None
    #: End after this long.
    duration: float | None = None
    max_batch: int = MAX_BATCH
    #: How long the writer lingers for more trades before committing a non-full batch.
    #: 0 = commit whatever arrived as soon as the previous commit is done (lowest latency;
    #: batches still grow by themselves under load).
    flush_interval: float = 0.0
    memory_limit: int = MEMORY_LIMIT
    #: Writer connections: while PostgreSQL commits one batch, Python encodes the next.
    writers: int = WRITERS
    #: Streams per WebSocket connection (Binance allows at most 1024).
    streams_per_connection: int = MAX_STREAMS_PER_CONNECTION
    #: Most ids one gap is filled with from REST; the older rest is recorded as skipped.
    backfill_max: int = BACKFILL_MAX
    #: Independent connections per group of streams; each trade is taken from the first.
    redundancy: int = 1
    #: Seconds without a trade after which a symbol is checked against the exchange.
    quiet_period: float = QUIET_PERIOD
    #: `--since`: first import the public archives from this UTC day (then REST up to now).
    since: date | None = None
    archive_url: str = "https://data.binance.vision"
    #: Where archive downloads are spooled while verified (with `since`).
    downloads_dir: Path = field(default_factory=lambda: Path("downloads"))
    #: The exchange's refusals shared with the other processes of the data directory
    #: (`exchange.bans`); None: this run's own only.
    bans_file: Path | None = None
    #: `--all`: every symbol the exchange lists as TRADING (then `symbols` is not used),
    #: only those quoted in `quotes` if any are given, re-read every `listing_interval`.
    all_symbols: bool = False
    quotes: tuple[str, ...] = ()
    listing_interval: float = LISTING_INTERVAL_SECONDS
    #: Serve Prometheus `/metrics` and `/healthz` on this port (None: no server; 0: any).
    metrics_port: int | None = None
    metrics_host: str = METRICS_HOST
    health_threshold: float = HEALTH_THRESHOLD_SECONDS
    #: Seconds after a month closes when the run compresses it (None: never); see
    #: `ingest.compressing`.
    compress_after: float | None = None
    #: Seconds after a UTC day ends when the run compresses that day's rows (None: never).
    compress_days_after: float | None = None

    def __post_init__(self) -> None:
        for broken, message in self._checks():
            if broken:
                raise ConfigError(message)

    def _checks(self) -> tuple[tuple[bool, str], ...]:
        """(condition that makes this config invalid, its error message), in the order checked."""
        return (
            (not self.symbols and not self.all_symbols, "no symbols to ingest"),
            (bool(self.quotes) and not self.all_symbols, "--quote only applies with --all"),
            (
                self.all_symbols and self.since is not None,
                (
                    "--since cannot be combined with --all; import the history of chosen "
                    "symbols with `binprice import`, then run `binprice ingest --all`"
                ),
            ),
            (self.listing_interval <= 0, "the listing interval must be positive"),
            (self.max_trades is not None and self.max_trades <= 0, "--max-trades must be positive"),
            (self.duration is not None and self.duration <= 0, "--duration must be positive"),
            (
                not 1 <= self.streams_per_connection <= MAX_STREAMS_PER_CONNECTION,
                "streams per connection must be between 1 and 1024",
            ),
            (self.backfill_max < 0, "--backfill-max must not be negative"),
            (
                not 1 <= self.redundancy <= MAX_REDUNDANCY,
                f"--redundancy must be between 1 and {MAX_REDUNDANCY}",
            ),
            (self.quiet_period <= 0, "--quiet-period must be positive"),
            (
                self.metrics_port is not None and not 0 <= self.metrics_port <= 65535,
                "--metrics-port must be between 0 and 65535",
            ),
            (self.health_threshold <= 0, "--health-threshold must be positive"),
            (not 0 <= self.flush_interval <= 1, "--batch-wait must be between 0 and 1 s"),
            (
                self.max_batch < 1 or self.memory_limit < self.max_batch,
                "memory limit must be at least one batch",
            ),
        )
