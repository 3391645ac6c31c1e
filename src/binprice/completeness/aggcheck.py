"""`gaps --verify --against-exchange --kind aggTrades`: the stored aggregate ids of a market
checked against the exchange's (`ingest --stream aggTrade`, docs/futures.md §10).

The trades' check (`repair.check_against_exchange`) asked of the aggregate series: each
symbol's tail up to the exchange's newest aggregate id (`aggTrades?limit=1`), and each
recorded hole of aggregate ids against what `aggTrades?fromId=` serves, which needs no API key
on any market. Nothing is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

import aiohttp

from binprice.completeness.repair import disproved_holes, exchange_last_ids
from binprice.db.gaps import Verification
from binprice.exchange.bans import BanBook
from binprice.exchange.rest import ONE_OFF_BAN_WAIT_SECONDS, RestClient
from binprice.kinds import TradeKind
from binprice.markets import Market

AGG = TradeKind.AGG_TRADES


async def check_aggregates(
    url: str,
    rest_url: str,
    symbols: Sequence[str],
    *,
    start: datetime | None,
    end: datetime | None,
    bans: BanBook | None,
    market: Market,
) -> Verification:
    """`verify_gaps` of the aggregate ids with the exchange's newest aggregate id per symbol
    and its word on each recorded hole."""
    wanted, holes = await asyncio.to_thread(_asked, url, symbols, market)
    async with aiohttp.ClientSession() as session:
        rest = RestClient(
            session, rest_url, bans=bans, max_ban_wait=ONE_OFF_BAN_WAIT_SECONDS, market=market
        )
        newest = await exchange_last_ids(rest, wanted, AGG)
        disproved = await disproved_holes(rest, holes, AGG)
    window = (start, end)
    return await asyncio.to_thread(
        _verify, url, wanted, window=window, newest=newest, disproved=disproved, market=market
    )


def _asked(
    url: str, symbols: Sequence[str], market: Market
) -> tuple[list[str], list[tuple[str, int, int]]]:
    """The symbols checked (the named ones, or every one with aggregates or their gaps) and
    their recorded holes of aggregate ids."""
    from binprice.db import connect
    from binprice.db.gaps import gap_symbols, hole_rows

    with connect(url) as conn:
        wanted = gap_symbols(conn, symbols, market=market, kind=AGG)
        return wanted, hole_rows(conn, wanted, market=market, kind=AGG)


def _verify(
    url: str,
    symbols: list[str],
    *,
    window: tuple[datetime | None, datetime | None],
    newest: dict[str, int],
    disproved: dict[str, list[tuple[int, int]]],
    market: Market,
) -> Verification:
    from binprice.db import connect
    from binprice.db.gaps import verify_gaps

    with connect(url) as conn:
        return verify_gaps(
            conn,
            symbols,
            start=window[0],
            end=window[1],
            exchange_last_ids=newest,
            disproved=disproved,
            market=market,
            kind=AGG,
        )
