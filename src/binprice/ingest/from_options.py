"""`IngestOptions` (what a caller asks, in the CLI's terms) turned into the pipeline's checked
`IngestConfig`, before any database is touched."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

from binprice._args import Duration, Symbols, as_duration, as_time, market_of, symbols_of
from binprice._options import IngestOptions
from binprice.errors import ConfigError
from binprice.exchange.bans import BanBook
from binprice.exchange.endpoints import endpoints
from binprice.history import DEFAULT_ARCHIVE_URL
from binprice.ingest.config import IngestConfig
from binprice.kinds import TradeKind
from binprice.symbols import DEFAULT_SYMBOLS, normalize_assets


def ingest_config(
    data_dir: Path,
    symbols: Symbols = None,
    options: IngestOptions | None = None,
    changes: dict[str, Any] | None = None,
) -> IngestConfig:
    """The run's `IngestConfig`: `options` with `changes` (single options by name), downloads
    and the exchange's refusals in `data_dir`. TypeError names unknown options; ConfigError
    refuses named symbols with `all_symbols`."""
    given = options if options is not None else IngestOptions()
    try:
        opts = replace(given, **(changes or {}))
    except TypeError:
        unknown = set(changes or {}) - {f.name for f in fields(IngestOptions)}
        raise TypeError(f"unknown ingest options: {', '.join(sorted(unknown))}") from None
    market = market_of(opts.market)
    kind = stream_kind(opts.stream)
    ws, rest = endpoints(opts.exchange, opts.ws_url, opts.rest_url, market)
    named = tuple(symbols_of(symbols))
    if opts.all_symbols and named:
        raise ConfigError("name symbols or use --all, not both")

    def seconds(value: Duration) -> float:
        return as_duration(value).total_seconds()

    return IngestConfig(
        symbols=() if opts.all_symbols else named or DEFAULT_SYMBOLS,
        market=market,
        kind=kind,
        api_key=opts.api_key or None,
        ws_url=ws,
        rest_url=rest,
        max_trades=opts.max_trades,
        duration=None if opts.duration is None else seconds(opts.duration),
        redundancy=opts.redundancy,
        quiet_period=seconds(opts.quiet_period),
        backfill_max=opts.backfill_max,
        since=None if opts.since is None else as_time(opts.since).date(),
        archive_url=opts.archive_url or DEFAULT_ARCHIVE_URL,
        downloads_dir=data_dir / "downloads",
        bans_file=BanBook.in_data_dir(data_dir).path,
        all_symbols=opts.all_symbols,
        quotes=normalize_assets(opts.quotes),
        listing_interval=seconds(opts.listing_interval),
        flush_interval=seconds(opts.batch_wait),
        metrics_port=opts.metrics_port,
        metrics_host=opts.metrics_host,
        health_threshold=seconds(opts.health_threshold),
        compress_after=compress_after(opts.compress_after),
        compress_days_after=compress_after(opts.compress_days_after),
    )


def stream_kind(stream: str) -> TradeKind:
    """`--stream trade|aggTrade` → the kind captured; ConfigError names the choices."""
    kind = {k.stream.lower(): k for k in TradeKind}.get(stream.strip().lower())
    if kind is None:
        raise ConfigError(f"unknown --stream {stream!r}; choose trade or aggTrade")
    return kind


def compress_after(value: Duration | None) -> float | None:
    """`--compress-after` (or `--compress-days-after`) in seconds; None for never (None, 0,
    "0" or "off")."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("off", "0")):
        return None
    seconds = as_duration(value).total_seconds()
    return seconds if seconds > 0 else None
