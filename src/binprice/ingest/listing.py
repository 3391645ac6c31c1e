"""`ingest --all`: every TRADING symbol of the exchange, kept current while the run goes on.

`exchangeInfo` is read at start and again every `--listing-interval` (default hourly): a new
listing is added to a connection with room (or a new one), a symbol that stops TRADING
(delisted, halted, BREAK) is unsubscribed, and each change is one event line. A symbol added
mid-run resumes exactly as at start: after its last stored id, with its open gaps fetched again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from binprice.errors import ExchangeError, GeoRestrictedError
from binprice.events import Emit, EventKind
from binprice.exchange.rest import RestClient
from binprice.ingest.config import LISTING_INTERVAL_SECONDS

#: At most this many symbols are named in one event line.
NAMED_MAX = 10

Change = Callable[[list[str]], Awaitable[None]]


def names(symbols: list[str]) -> str:
    """`A, B, C and 7 more`: a list of symbols short enough for one line."""
    shown = ", ".join(symbols[:NAMED_MAX])
    more = len(symbols) - NAMED_MAX
    return shown + (f" and {more} more" if more > 0 else "")


def changes(now: set[str], carried: set[str]) -> tuple[list[str], list[str]]:
    """(newly trading, no longer trading), each sorted."""
    return sorted(now - carried), sorted(carried - now)


class Listing:
    """Reads the exchange's TRADING symbols and, while the run goes on, hands the changes on."""

    def __init__(
        self,
        rest: RestClient,
        quotes: tuple[str, ...],
        emit: Emit,
        *,
        interval: float = LISTING_INTERVAL_SECONDS,
    ) -> None:
        self._rest = rest
        self._quotes = quotes
        self._emit = emit
        self._interval = interval

    def describe(self) -> str:
        quoted = f" quoted in {', '.join(self._quotes)}" if self._quotes else ""
        return f"every TRADING symbol{quoted}"

    async def current(self) -> list[str]:
        return await self._rest.trading_symbols(self._quotes)

    async def follow(self, carried: Callable[[], set[str]], add: Change, remove: Change) -> None:
        """Every interval: add what is newly TRADING, remove what no longer is (until
        cancelled). An unanswered exchangeInfo leaves the set as it was until the next try."""
        while True:
            await asyncio.sleep(self._interval)
            try:
                now = set(await self.current())
            except GeoRestrictedError:
                raise
            except ExchangeError as exc:
                self._emit(
                    EventKind.LISTING_ERROR,
                    f"cannot re-read the exchange's symbols: {exc}; keeping the current ones",
                )
                continue
            new, gone = changes(now, carried())
            if gone:
                await remove(gone)
                self._emit(EventKind.LISTING, f"no longer TRADING, dropped: {names(gone)}")
            if new:
                await add(new)
                self._emit(EventKind.LISTING, f"newly TRADING, added: {names(new)}")
