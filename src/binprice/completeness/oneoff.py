"""`gaps --verify --against-exchange` and `gaps --repair` run to completion from synchronous
code: the REST URL from the market's preset or the caller, the data directory's record of the
exchange's refusals, the schema checked before the exchange is asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

from binprice._args import Symbols, When, as_time_or_none, symbols_of
from binprice._sync import run_sync
from binprice.completeness.repair import (
    RepairProgress,
    RepairResult,
    check_against_exchange,
    repair,
)
from binprice.db.gaps import Verification
from binprice.exchange.bans import BanBook
from binprice.exchange.endpoints import endpoints
from binprice.kinds import DEFAULT_KIND, TradeKind
from binprice.markets import DEFAULT_MARKET, Market


def verify_with_exchange(
    checked_url: Callable[[], str],
    data_dir: Path,
    exchange: str,
    rest_url: str | None,
    symbols: Sequence[str],
    *,
    start: datetime | None,
    end: datetime | None,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
    api_key: str | None = None,
) -> Verification:
    """The stored ids of `market` checked, each symbol's tail against the exchange's newest
    trade (of `kind` aggregate trades: the stored aggregate ids against its newest aggregate).
    `checked_url` gives the database's URL once its schema is checked."""
    base = rest_base(exchange, rest_url, market)
    url = checked_url()
    bans = BanBook.in_data_dir(data_dir)
    window = {"start": start, "end": end}
    return run_sync(
        check_against_exchange(
            url, base, symbols, **window, bans=bans, market=market, api_key=api_key, kind=kind
        )
    )


def repair_now(
    checked_url: Callable[[], str],
    data_dir: Path,
    exchange: str,
    rest_url: str | None,
    symbols: Symbols,
    *,
    start: When | None,
    end: When | None,
    progress: Callable[[RepairProgress], None] | None,
    market: Market = DEFAULT_MARKET,
    api_key: str | None = None,
    kind: TradeKind = DEFAULT_KIND,
) -> RepairResult:
    """Every unaccounted hole of `market` (of `kind`'s ids) recorded as an open gap and every
    open gap fetched from REST."""
    base = rest_base(exchange, rest_url, market)
    url = checked_url()
    lo, hi, wanted = as_time_or_none(start), as_time_or_none(end), symbols_of(symbols)
    bans = BanBook.in_data_dir(data_dir)
    return run_sync(
        repair(
            url,
            base,
            wanted,
            start=lo,
            end=hi,
            progress=progress,
            bans=bans,
            market=market,
            api_key=api_key,
            kind=kind,
        )
    )


def rest_base(exchange: str, rest_url: str | None, market: Market = DEFAULT_MARKET) -> str:
    """The REST base URL: `rest_url`, else the `exchange` preset's of `market` (as `ingest`
    resolves it)."""
    return endpoints(exchange, None, rest_url, market)[1]
