"""`binprice gaps --repair`: record every hole nobody accounted for, and fill it from REST now.

The check is `verify_gaps` asked with the exchange's newest ids (so a missing tail counts too);
every unaccounted range becomes an `open` gap first — committed before anything is fetched, so
an interrupted repair leaves the truth behind and `binprice ingest` finishes it. Then every
open gap of the symbols (those just recorded, and those earlier runs left open, such as a
stop's tail) is fetched page by page with the same walk the ingest's backfill uses, written
with the ingest's COPY writer, and settled (`filled`, or `hole` for ids the exchange lacks).

Recorded holes are asked about again: an earlier version recorded a hole on a mere empty page,
and a hole is only as good as the exchange's word. Each is reopened and walked like an open gap
(one page, weight 25, when the exchange confirms it): what the exchange skips over is a hole
again, what it serves is stored, and an empty answer leaves the gap open (exit 1), not lost.
`gaps --verify --against-exchange` asks the same question without writing: a hole the exchange
has trades in accounts for nothing.

Each market is checked against its own API (`MarketApi`): on the futures markets the newest id
comes from `trades?limit=1`, and `historicalTrades` needs an API key (docs/futures.md §4).
Without one, a gap is filled as far as the newest trades reach (`fetch_recent`); older ids stay
open and the result counts them (`needs_key`), and recorded holes are not asked about again
(`unasked_holes`): both say the key is what is missing, never an error.

Of `kind` aggregate trades (`gaps --kind aggTrades`) the same check and repair run on the
aggregate ids: the newest from `aggTrades?limit=1`, the walk through `aggTrades?fromId=` (no
API key on any market), the rows written by `AggTradeWriter`, the gaps those of kind 1.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import aiohttp

from binprice.completeness.backfill import PAGE_ATTEMPTS, Page, fetch_missing, fetch_recent
from binprice.completeness.gapset import GapSet
from binprice.completeness.series import newest_id, page_from
from binprice.db.aggcopy import AggCopyEncoder
from binprice.db.aggwriter import writer_class
from binprice.db.copy import Batch, CopyEncoder
from binprice.db.gaprows import GapRows
from binprice.db.gaps import Verification
from binprice.db.writer import TradeWriter
from binprice.errors import BinpriceError, EmptyPageError
from binprice.exchange.bans import BanBook
from binprice.exchange.endpoints import market_api
from binprice.exchange.protocol import SeriesRecord, WireAggTrade, WireTrade
from binprice.exchange.rest import ONE_OFF_BAN_WAIT_SECONDS, RestClient
from binprice.kinds import DEFAULT_KIND, TradeKind
from binprice.markets import DEFAULT_MARKET, Market


@dataclass(frozen=True, slots=True)
class RepairProgress:
    """Where a repair is: the gap being fetched and how far it got."""

    symbol: str
    first_id: int
    last_id: int
    fetched: int
    absent: int
    done: bool


@dataclass(frozen=True, slots=True)
class RepairedGap:
    """One unaccounted range and what the repair made of it."""

    symbol: str
    first_id: int
    last_id: int
    #: Trades fetched and newly stored.
    stored: int
    #: Ids the exchange does not have (recorded as a hole).
    absent: int
    state: str
    #: Ids left open because only `historicalTrades`, which needs the API key this repair
    #: did not have, reaches them (older than the newest trades; futures markets).
    needs_key: int = 0

    @property
    def size(self) -> int:
        return self.last_id - self.first_id + 1


@dataclass(frozen=True, slots=True)
class RepairResult:
    """The check before the repair, and every gap it filled."""

    before: Verification
    gaps: tuple[RepairedGap, ...]
    #: Recorded holes not asked about again: that needs `historicalTrades`, and its API key
    #: (futures markets) was not given.
    unasked_holes: int = 0

    @property
    def stored(self) -> int:
        return sum(g.stored for g in self.gaps)

    @property
    def needs_key(self) -> int:
        """Ids left open for want of an API key."""
        return sum(g.needs_key for g in self.gaps)


async def exchange_last_ids(
    rest: RestClient, symbols: Sequence[str], kind: TradeKind = DEFAULT_KIND
) -> dict[str, int]:
    """The exchange's newest trade id (or aggregate id, by `kind`) of each symbol that has
    traded."""
    found: dict[str, int] = {}

    async def one(symbol: str) -> None:
        newest = await newest_id(rest, kind, symbol)
        if newest is not None:
            found[symbol] = newest

    try:
        async with asyncio.TaskGroup() as tg:
            for symbol in symbols:
                tg.create_task(one(symbol))
    except* BinpriceError as failed:
        # The symbols fail alike (the exchange is down, or refuses this IP): one error, the
        # first, is what the caller and the command line report, not a group of them.
        raise _first_leaf(failed) from None
    return found


def _first_leaf(group: BaseExceptionGroup[BinpriceError]) -> BinpriceError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first


def verify_against(
    url: str,
    symbols: Sequence[str],
    start: datetime | None,
    end: datetime | None,
    newest: dict[str, int],
    *,
    disproved: dict[str, list[tuple[int, int]]] | None = None,
    market: Market = DEFAULT_MARKET,
    kind: TradeKind = DEFAULT_KIND,
) -> Verification:
    from binprice.db import connect
    from binprice.db.gaps import verify_gaps

    with connect(url) as conn:
        return verify_gaps(
            conn,
            symbols,
            start=start,
            end=end,
            exchange_last_ids=newest,
            disproved=disproved,
            market=market,
            kind=kind,
        )


def stored_symbols(
    url: str, symbols: Sequence[str], market: Market, kind: TradeKind = DEFAULT_KIND
) -> list[str]:
    """`symbols`, or every symbol of `market` with records of `kind` or their gaps."""
    from binprice.db import connect
    from binprice.db.gaps import gap_symbols

    with connect(url) as conn:
        return gap_symbols(conn, symbols, market=market, kind=kind)


def recorded_holes(
    url: str, symbols: Sequence[str], market: Market, kind: TradeKind = DEFAULT_KIND
) -> list[tuple[str, int, int]]:
    from binprice.db import connect
    from binprice.db.gaps import hole_rows

    with connect(url) as conn:
        return hole_rows(conn, symbols, market=market, kind=kind)


def one_off_client(
    session: aiohttp.ClientSession,
    rest_url: str,
    bans: BanBook | None,
    market: Market,
    api_key: str | None,
) -> RestClient:
    """The REST client of a one-off check or repair: the market's API, a refusal longer than
    a one-off command waits reported at once."""
    return RestClient(
        session,
        rest_url,
        bans=bans,
        max_ban_wait=ONE_OFF_BAN_WAIT_SECONDS,
        market=market,
        api_key=api_key,
    )


def keyless(rest: RestClient, kind: TradeKind = DEFAULT_KIND) -> bool:
    """True if `rest`'s market needs an API key for `historicalTrades` and it has none (never
    of aggregate trades: `aggTrades?fromId=` is public on every market)."""
    if kind is TradeKind.AGG_TRADES:
        return False
    return market_api(rest.market).historical_needs_key and not rest.has_api_key


async def disproved_holes(
    rest: RestClient, holes: Sequence[tuple[str, int, int]], kind: TradeKind = DEFAULT_KIND
) -> dict[str, list[tuple[int, int]]]:
    """Per symbol, the parts of `holes` the exchange has trades in: each hole's first id is
    asked for (one page, weight 25); a page that begins inside the hole disproves it from
    there on. An empty page proves nothing either way. (Of `kind` aggregate trades: holes of
    aggregate ids, asked of `aggTrades`.)"""
    found: dict[str, list[tuple[int, int]]] = {}
    for symbol, first, last in holes:
        page = await page_from(rest, kind, symbol, first, PAGE_ATTEMPTS)
        if page and page[0].trade_id <= last:
            found.setdefault(symbol, []).append((page[0].trade_id, last))
    return found


async def check_against_exchange(
    url: str,
    rest_url: str,
    symbols: Sequence[str] = (),
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    bans: BanBook | None = None,
    market: Market = DEFAULT_MARKET,
    api_key: str | None = None,
    kind: TradeKind = DEFAULT_KIND,
) -> Verification:
    """`verify_gaps` with each symbol's tail checked against the exchange's newest id, and
    each recorded hole against the trades the exchange has (not without the API key a
    futures market's `historicalTrades` needs: then they are counted as not asked). Of `kind`
    aggregate trades: the aggregate ids, against `aggTrades` (no key needed)."""
    wanted = await asyncio.to_thread(stored_symbols, url, symbols, market, kind)
    holes = await asyncio.to_thread(recorded_holes, url, wanted, market, kind)
    async with aiohttp.ClientSession() as session:
        rest = one_off_client(session, rest_url, bans, market, api_key)
        newest = await exchange_last_ids(rest, wanted, kind)
        unasked = keyless(rest, kind)
        disproved = {} if unasked else await disproved_holes(rest, holes, kind)
    checked = await asyncio.to_thread(
        verify_against,
        url,
        wanted,
        start,
        end,
        newest,
        disproved=disproved,
        market=market,
        kind=kind,
    )
    return replace(checked, unasked_holes=len(holes)) if unasked else checked


async def repair(
    url: str,
    rest_url: str,
    symbols: Sequence[str] = (),
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    progress: Callable[[RepairProgress], None] | None = None,
    bans: BanBook | None = None,
    market: Market = DEFAULT_MARKET,
    api_key: str | None = None,
    kind: TradeKind = DEFAULT_KIND,
) -> RepairResult:
    """Record every unaccounted hole of `symbols` of `market` in the window (and each missing
    tail) as an open gap, then fetch it from REST and store it. Of `kind` aggregate trades:
    the aggregate ids, fetched through `aggTrades?fromId=` into `agg_trades`."""
    wanted = await asyncio.to_thread(stored_symbols, url, symbols, market, kind)
    async with aiohttp.ClientSession() as session:
        rest = one_off_client(session, rest_url, bans, market, api_key)
        newest = await exchange_last_ids(rest, wanted, kind)
        before = await asyncio.to_thread(
            verify_against, url, wanted, start, end, newest, market=market, kind=kind
        )
        found = [(s.symbol, a, b) for s in before.symbols for a, b in s.unaccounted_ranges]
        writer = await writer_class(kind).connect(url, market)
        rows = GapRows(url, market, kind)
        try:
            for symbol, first, last in found:
                rows.add(symbol, first, last, "open")
            await rows.flush()
            holes = await rows.holes(wanted)
            unasked = len(holes) if keyless(rest, kind) else 0
            for hole in [] if unasked else holes:
                await rows.reopen(*hole)  # asked again below, like any open gap
            todo = await rows.open_gaps(wanted)
            done = [
                await _fill(writer, rows, rest, gap, missing, progress=progress)
                for gap, missing in todo
            ]
        finally:
            await writer.close()
            await rows.close()
    return RepairResult(before, tuple(done), unasked)


async def _fill(
    writer: TradeWriter,
    rows: GapRows,
    rest: RestClient,
    gap: tuple[str, int, int],
    ranges: list[tuple[int, int]],
    *,
    progress: Callable[[RepairProgress], None] | None,
) -> RepairedGap:
    """Fetch the still-missing `ranges` of the open `gap`, then settle its row. Without the
    API key a futures market's `historicalTrades` needs, only the newest trades are asked.
    The gap's kind is that of `rows`: trades, or aggregate trades (`aggTrades?fromId=`)."""
    symbol, first, last = gap
    missing = GapSet()
    for a, b in ranges:
        missing.add(a, b)
    kind = rows.kind
    wanted = WireAggTrade if kind is TradeKind.AGG_TRADES else WireTrade
    encode = _encoder(rest.market, kind)
    stored = absent = needs_key = 0

    async def take(page: Page) -> None:
        nonlocal stored, absent
        for a, b in page.holes:
            missing.remove(a, b)
            absent += b - a + 1
            rows.add(symbol, a, b, "hole")
        await rows.flush()
        # A walk's pages hold the records of its kind (`WireTrade` or `WireAggTrade`).
        trades: list[SeriesRecord] = [
            t for t in page.trades if isinstance(t, wanted) and missing.claim(t.trade_id)
        ]
        if trades:
            inserted, _ = await writer.write(encode(trades))
            stored += inserted.get(symbol, 0)
        if progress is not None:
            progress(RepairProgress(symbol, first, last, stored, absent, done=False))

    if keyless(rest, kind):
        recent = await fetch_recent(rest, symbol, missing, first, last)
        await take(recent.page)
        needs_key = sum(b - a + 1 for a, b in recent.older)  # they stay open
    else:
        with suppress(EmptyPageError):  # no proof of anything: the gap stays open
            async for page in fetch_missing(rest, symbol, missing, first, last, kind=kind):
                await take(page)
    await rows.settle([gap])
    state = await rows.state(symbol, first, last) or "missing"
    if progress is not None:
        progress(RepairProgress(symbol, first, last, stored, absent, done=True))
    return RepairedGap(symbol, first, last, stored, absent, state, needs_key)


def _encoder(market: Market, kind: TradeKind) -> Callable[[list[Any]], Batch]:
    """The COPY encoding of the repair's writer: trades, or aggregate trades (each encoder
    takes the records of its own kind)."""
    if kind is TradeKind.AGG_TRADES:
        return AggCopyEncoder(market).batch
    return CopyEncoder(market).batch
