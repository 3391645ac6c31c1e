"""What `binprice exchange` and `binprice archive` run: the test exchange and the test archive
built from their options, served until SIGINT/SIGTERM.

The commands themselves (options, help) are `binprice.cli._exchange`'s; this module turns the
parsed values into a server and announces its URLs through a callback (one JSON line, the
command's view), so the library prints nothing itself.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from binprice.errors import ConfigError, UsageError
from binprice.exchange.endpoints import market_api
from binprice.markets import Market, parse_market
from binprice.testing.archive import ArchiveFaults, ArchiveServer
from binprice.testing.archive_files import MICROS_FROM, ArchiveMarket
from binprice.testing.connection import ConnectionLimits
from binprice.testing.exchange import TestExchange
from binprice.testing.faults import Faults
from binprice.testing.timeline import HISTORY_TRADES_PER_DAY, History
from binprice.testing.tls import TlsFiles

#: `--rate` of the command: a moderate pace a newcomer's terminal can follow (trades/s per
#: symbol; Binance's BTCUSDT averages about 47). `max` produces as fast as readers read.
DEFAULT_RATE = "10"
Announce = Callable[[dict[str, str]], None]


def _pairs(items: Sequence[str], option: str, what: str) -> dict[str, str]:
    """``["ETHUSDT=BREAK"]`` → ``{"ETHUSDT": "BREAK"}``; a UsageError for a malformed item."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UsageError(f"{option} takes SYMBOL={what}, got {item!r}")
        out[name.strip().upper()] = value.strip()
    return out


def symbol_list(text: str) -> list[str]:
    """``"btcusdt, ETHUSDT"`` → ``["BTCUSDT", "ETHUSDT"]``."""
    symbols = [s.strip().upper() for s in text.split(",") if s.strip()]
    if not symbols:
        raise UsageError("--symbols names no symbol; give e.g. --symbols BTCUSDT,ETHUSDT")
    return symbols


def market_of(text: str) -> Market:
    """``--market usdm`` → ``Market.USDM``; a UsageError naming the choices."""
    try:
        return parse_market(text)
    except ConfigError as exc:
        raise UsageError(str(exc).replace("unknown market", "unknown --market")) from None


def parse_day(text: str, option: str) -> date:
    """``2024-12-01`` → a date; a UsageError naming the option."""
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"{option} takes a day as YYYY-MM-DD, got {text!r}") from None


def parse_rate(text: str) -> float | None:
    """``"max"`` → None (full speed), else a positive number of trades/s."""
    if text.strip().lower() == "max":
        return None
    try:
        rate = float(text)
    except ValueError:
        raise UsageError(f"--rate takes trades/s per symbol or 'max', got {text!r}") from None
    if not rate > 0:
        raise UsageError(f"--rate must be positive, got {text!r}")
    return rate


@dataclass(frozen=True, slots=True)
class ExchangeOptions:
    """The test exchange as `binprice exchange` describes it (see its `--help`)."""

    symbols: str
    market: Market = Market.SPOT
    host: str = "127.0.0.1"
    port: int = 9443
    seed: int = 0
    rate: str = DEFAULT_RATE
    rate_of: Sequence[str] = ()
    max_trades: int | None = None
    status: Sequence[str] = ()
    #: None: the market's (Spot 20 s / 60 s, futures 3 min / 10 min).
    ping_interval: float | None = None
    pong_timeout: float | None = None
    weight_limit: int | None = None
    history: bool = True
    tls: bool = False
    cert: Path | None = None
    key: Path | None = None
    faults: Faults = field(default_factory=Faults)


def build_exchange(options: ExchangeOptions) -> TestExchange:
    """The exchange `options` describe; UsageError for options that do not fit together."""
    symbols = symbol_list(options.symbols)
    rates = {s: _positive(r, s) for s, r in _pairs(options.rate_of, "--rate-of", "RATE").items()}
    unlisted = sorted(set(rates) - set(symbols))
    if unlisted:
        raise UsageError(f"--rate-of names symbols missing from --symbols: {', '.join(unlisted)}")
    if (options.cert is None) != (options.key is None):
        raise UsageError("--cert and --key go together: give both, or --tls for a new pair")
    api = market_api(options.market)
    limits = ConnectionLimits(
        ping_interval=options.ping_interval or api.ping_interval,
        pong_timeout=options.pong_timeout or api.pong_timeout,
        max_incoming_per_second=api.messages_per_second,
        max_streams=api.streams_per_connection,
    )
    tls: TlsFiles | bool = options.tls
    if options.cert is not None and options.key is not None:
        tls = TlsFiles(options.cert, options.key)
    exchange = TestExchange(
        symbols,
        seed=options.seed,
        rate=parse_rate(options.rate),
        rates=rates,
        max_trades=options.max_trades,
        statuses=_pairs(options.status, "--status", "STATUS"),
        host=options.host,
        port=options.port,
        limits=limits,
        weight_limit=options.weight_limit,
        faults=options.faults,
        tls=tls,
        market=options.market,
    )
    if options.history:
        exchange.rest.history = History(options.seed, options.market)
    return exchange


def _positive(text: str, symbol: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise UsageError(f"--rate-of takes SYMBOL=RATE, got {symbol}={text}") from None
    if not rate > 0:
        raise UsageError(f"--rate-of {symbol} must be positive, got {text}")
    return rate


async def serve_exchange(exchange: TestExchange, announce: Announce) -> None:
    """Run until SIGINT/SIGTERM, announcing the URLs (and the TLS certificate) once it listens."""
    stop = _stop_on_signals()
    async with exchange:
        announcement = {
            "ws_url": exchange.ws_url,
            "rest_url": exchange.rest_url,
            "market": exchange.market.value,
        }
        if exchange.tls_files is not None:
            announcement["cert"] = str(exchange.tls_files.cert)
        announce(announcement)
        await stop.wait()


def run_exchange(options: ExchangeOptions, announce: Announce) -> None:
    asyncio.run(serve_exchange(build_exchange(options), announce))


# --- the archive ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ArchiveOptions:
    """The test archive as `binprice archive` describes it (see its `--help`)."""

    symbols: str
    market: Market = Market.SPOT
    host: str = "127.0.0.1"
    port: int = 8080
    directory: Path | None = None
    start: date = date(2024, 12, 1)
    end: date = date(2025, 2, 1)
    seed: int = 0
    trades_per_day: int = HISTORY_TRADES_PER_DAY
    rest: bool = False
    wrong_checksum: Sequence[str] = ()
    truncated: Sequence[str] = ()
    corrupt: Sequence[str] = ()
    missing: Sequence[str] = ()
    stalled: Sequence[str] = ()
    #: None: today (Binance publishes a day's files the next day).
    unpublished_from: date | None = None
    micros_from: date = MICROS_FROM


def build_archive(options: ArchiveOptions, today: date | None = None) -> ArchiveServer:
    """The archive `options` describe; `today` (default: the UTC date) is the first day not
    published yet unless `unpublished_from` says otherwise."""
    if options.end <= options.start:
        raise UsageError(f"--end ({options.end}) must be after --start ({options.start})")
    if options.trades_per_day < 1:
        raise UsageError("--trades-per-day must be at least 1")
    faults = ArchiveFaults(
        wrong_checksum=set(options.wrong_checksum),
        truncated=set(options.truncated),
        corrupt=set(options.corrupt),
        missing=set(options.missing),
        stalled=set(options.stalled),
        unpublished_from=options.unpublished_from or today or datetime.now(UTC).date(),
        micros_from=options.micros_from,
    )
    if options.directory is not None:
        return ArchiveServer(
            None, faults, directory=options.directory, host=options.host, port=options.port
        )
    try:
        market = ArchiveMarket.generate(
            symbol_list(options.symbols),
            options.start,
            options.end,
            seed=options.seed,
            trades_per_day=options.trades_per_day,
            market=options.market,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return ArchiveServer(market, faults, rest=options.rest, host=options.host, port=options.port)


async def serve_archive(server: ArchiveServer, announce: Announce) -> None:
    """Run until SIGINT/SIGTERM, announcing the URL (and the REST URL) once it listens."""
    stop = _stop_on_signals()
    async with server:
        announcement = {"url": server.url}
        if server.serves_rest:
            announcement["rest_url"] = server.url
        announce(announcement)
        await stop.wait()


def run_archive(options: ArchiveOptions, announce: Announce) -> None:
    asyncio.run(serve_archive(build_archive(options), announce))


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


__all__ = [
    "DEFAULT_RATE",
    "ArchiveOptions",
    "ExchangeOptions",
    "Faults",
    "build_archive",
    "build_exchange",
    "market_of",
    "parse_day",
    "run_archive",
    "run_exchange",
]
