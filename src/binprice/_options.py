"""What a capture run is asked to do: `IngestOptions`, the one typed object `binprice ingest`
fills and `Store.ingest` takes (and turns into the pipeline's `IngestConfig`).

Each field is the `binprice ingest` option of the same name, with the same default; times as
`Duration` (a timedelta, seconds, or the CLI's `500ms`, `1h30m`), days as `When`. An import's
options are `binprice.history.ImportOptions`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Self

from binprice._args import Duration as Duration
from binprice._args import MarketArg
from binprice._args import When as When
from binprice.ingest.config import (
    BACKFILL_MAX,
    HEALTH_THRESHOLD_SECONDS,
    LISTING_INTERVAL_SECONDS,
    METRICS_HOST,
)


@dataclass(frozen=True, slots=True)
class IngestOptions:
    """One capture run, besides its symbols (see `binprice ingest --help` for each option)."""

    #: The market captured: spot, usdm or coinm (a `Market` or its name).
    market: MarketArg = "spot"
    #: The stream captured: `trade` (trades, into `trades`) or `aggTrade` (aggregate trades,
    #: into `agg_trades`, with completeness by aggregate id).
    stream: str = "trade"
    #: An API key for the futures' `historicalTrades` (backfill of gaps older than the newest
    #: 1000 trades); never shown (kept out of the repr).
    api_key: str | None = field(default=None, repr=False)
    #: Stop after this long (None: until stopped).
    duration: Duration | None = None
    #: Stop after storing this many new trades.
    max_trades: int | None = None
    #: A preset (`binance`, `binance-us`, `testnet`, `data-stream`); `ws_url`/`rest_url` win.
    exchange: str = "binance"
    ws_url: str | None = None
    rest_url: str | None = None
    #: Independent connections per group of streams (1-3).
    redundancy: int = 1
    #: Ask the exchange for the newest id of a symbol quiet for this long.
    quiet_period: Duration = "60s"
    #: Most trade ids fetched from REST per gap.
    backfill_max: int = BACKFILL_MAX
    #: First import every trade since this UTC day from the public archives.
    since: When | None = None
    #: The archive service for `since` (None: Binance's).
    archive_url: str | None = None
    #: `--all`: every TRADING symbol (then no symbols may be named), optionally only those
    #: quoted in `quotes`; the listing is re-read every `listing_interval`.
    all_symbols: bool = False
    quotes: Sequence[str] = ()
    listing_interval: Duration = LISTING_INTERVAL_SECONDS
    #: How long a small batch waits for more trades before it is committed.
    batch_wait: Duration = "0s"
    #: Serve Prometheus `/metrics` and `/healthz` on this port of `metrics_host`; `/healthz`
    #: turns 503 once a wait passes `health_threshold`.
    metrics_port: int | None = None
    metrics_host: str = METRICS_HOST
    health_threshold: Duration = f"{HEALTH_THRESHOLD_SECONDS:g}s"
    #: Compress each month this long after it closes (`db compress`); None, 0 or "off": never.
    compress_after: Duration | None = "3d"
    #: Compress the days of the month being captured (and of months not compressed whole yet)
    #: this long after each UTC day ends; None, 0 or "off": never.
    compress_days_after: Duration | None = "1d"

    def __post_init__(self) -> None:
        object.__setattr__(self, "quotes", tuple(self.quotes or ()))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> Self:
        """The options among `params` (a command's parameters by name); the rest are left."""
        return cls(**{f.name: params[f.name] for f in fields(cls) if f.name in params})
