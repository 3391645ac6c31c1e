"""Fetching missing trade ids from REST `historicalTrades`, page by page.

One walk serves both the running ingest (which hands what it fetches to the writer, and whose
missing ids can also arrive late on the stream meanwhile) and `binprice gaps --repair` (which
writes straight to the table). The walk pages through `historicalTrades?fromId=` (1000 per
page, weight 25) from the first id still missing, so whatever the consumer already has is
skipped.

Binance answers `fromId=X` with the ids >= X it has, in order. So ids a page steps over (it
begins past `fromId`, or two of its rows are not consecutive) are the exchange's own word that
they do not exist: a confirmed hole, reported, not looped on. An empty page is no such word:
every id of a gap is at or below an id the exchange has shown (on the stream, or as its
newest), so an empty answer is a glitch, an outage or a lagging node. The walk then raises
EmptyPageError and the ids stay missing, to be asked for again later; it never records a hole
on an empty page.

A futures market's `historicalTrades` needs an API key (docs/futures.md §4). Without one,
`fetch_recent` takes what the newest trades (`trades`, the newest 1000, no key) hold of a gap:
their ids are consecutive market trades, so ids inside their window they step over are holes
(non-market trades); the ids older than their oldest trade are out of reach, and the caller
says so.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from binprice.completeness.gapset import GapSet
from binprice.completeness.series import page_from
from binprice.errors import EmptyPageError
from binprice.exchange.protocol import SeriesRecord
from binprice.exchange.rest import RestClient
from binprice.kinds import DEFAULT_KIND, TradeKind

#: Attempts per page before the walk gives up (the caller retries the gap later).
PAGE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Page:
    """One answer of the walk: trades inside the range, and ids the exchange does not have."""

    symbol: str
    trades: list[SeriesRecord]
    holes: list[tuple[int, int]]


async def fetch_missing(
    rest: RestClient,
    symbol: str,
    missing: GapSet,
    first: int,
    last: int,
    *,
    kind: TradeKind = DEFAULT_KIND,
) -> AsyncIterator[Page]:
    """Pages covering the ids of `first..last` that are in `missing`.

    The consumer must take each page's trades and holes out of `missing` (claim and remove)
    before asking for the next page: that is how the walk moves on. Raises ExchangeError when
    a page cannot be had after PAGE_ATTEMPTS, EmptyPageError (after yielding what came
    before) when the exchange answers nothing for ids it has. Of `kind` aggregate trades the
    ids are aggregate ids, and the pages `aggTrades?fromId=` (series.py).
    """
    while True:
        todo = missing.within(first, last)
        if not todo:
            return
        from_id = todo[0][0]
        page = await page_from(rest, kind, symbol, from_id, PAGE_ATTEMPTS)
        if not page:
            raise EmptyPageError(
                f"the exchange answered no trades from id {from_id} although it has later ones "
                "(no proof they do not exist); they stay missing"
            )
        yield Page(
            symbol,
            [t for t in page if first <= t.trade_id <= last],
            _skipped(missing, page, from_id, last),
        )
        if page[-1].trade_id >= last:
            return


@dataclass(frozen=True, slots=True)
class RecentPage:
    """What the newest trades hold of a gap, and what they cannot reach."""

    page: Page
    #: Missing ids older than the oldest trade served: only `historicalTrades` (with the key
    #: on the futures markets) or the archive reaches them.
    older: list[tuple[int, int]]


async def fetch_recent(
    rest: RestClient, symbol: str, missing: GapSet, first: int, last: int
) -> RecentPage:
    """The ids of `first..last` in `missing` as far as the newest trades (`trades`, no API
    key) reach: the trades among them, the ids inside their window they lack (holes), and the
    missing ids older than their oldest trade. An empty answer reaches nothing."""
    recent = await rest.recent_trades(symbol, PAGE_ATTEMPTS)
    if not recent:
        return RecentPage(Page(symbol, [], []), missing.within(first, last))
    oldest, newest = recent[0].trade_id, recent[-1].trade_id
    inside: list[SeriesRecord] = [t for t in recent if first <= t.trade_id <= last]
    start = max(first, oldest)
    holes = _skipped(missing, [t for t in recent if t.trade_id >= start], start, min(last, newest))
    older = missing.within(first, min(last, oldest - 1))
    return RecentPage(Page(symbol, inside, holes), older)


def _skipped(
    missing: GapSet, page: Sequence[SeriesRecord], from_id: int, last: int
) -> list[tuple[int, int]]:
    """The missing ids up to `last` the page steps over: before its first row, or between two
    rows (the exchange answers with consecutive ids it has, so those it skips it lacks)."""
    holes: list[tuple[int, int]] = []
    previous = from_id - 1
    for trade in page:
        if previous >= last:
            break
        if trade.trade_id > previous + 1:
            holes += missing.within(previous + 1, min(last, trade.trade_id - 1))
        previous = trade.trade_id
    return holes
