"""Reconciliation with the exchange: the stream shows gaps only when a later trade arrives.

After a reconnect, a symbol that then goes quiet would hide what it missed while the connection
was down until its next trade — minutes or hours on a rare pair. So the exchange is asked for
its newest trade id (`aggTrades?limit=1`: its `l` is the last trade id, weight 4 against
`trades`' 25):

- after every connect, for the symbols of that connection that deliver nothing within
  `CONNECT_GRACE_SECONDS` (a symbol that trades proves its own continuity for free);
- for any symbol without a trade for the quiet period (default 60 s), again after twice that
  while it stays quiet, and so on up to `QUIET_MAX_SECONDS`, so a thousand idle symbols cost a
  few weight per minute, not thousands;
- once more when the run stops, so the tail it is known to be missing is recorded.

Whatever the exchange has past the last id seen becomes a gap, recorded and fetched like any
other. Requests share the REST client's weight budget with the backfill.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from binprice.completeness.series import newest_id
from binprice.errors import ExchangeError, GeoRestrictedError
from binprice.events import EventKind
from binprice.exchange.rest import RestClient
from binprice.kinds import DEFAULT_KIND, TradeKind

#: A symbol that delivers a trade this soon after a connect needs no REST check.
CONNECT_GRACE_SECONDS = 1.0
DEFAULT_QUIET_SECONDS = 60.0
#: A symbol that stays quiet is checked ever less often, down to once per this.
QUIET_MAX_SECONDS = 1800.0
TICK_SECONDS = 0.5
#: REST requests in flight at once for one round of checks.
CONCURRENCY = 8


class IdTracker(Protocol):
    """The last id seen of each symbol (the ingest run's tracker), and the one way past it:
    `advance` opens a gap up to an id the exchange has and returns how many ids it holds."""

    @property
    def symbols(self) -> Sequence[str]: ...

    def last_id(self, symbol: str) -> int | None: ...

    def advance(self, symbol: str, newest: int, why: str) -> int: ...


class ReconcileRecorder(Protocol):
    """What the reconciler reports (the ingest run's recorder)."""

    def event(self, kind: EventKind, message: str) -> None: ...

    def reconciled(self, found: int) -> None: ...


class Reconciler:
    """Asks the exchange for newest ids when the stream cannot be trusted to show gaps."""

    def __init__(
        self,
        tracker: IdTracker,
        rest: RestClient,
        recorder: ReconcileRecorder,
        *,
        quiet_after: float = DEFAULT_QUIET_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        kind: TradeKind = DEFAULT_KIND,
    ) -> None:
        self._tracker = tracker
        #: Whose newest id is asked: the trades' or (`--stream aggTrade`) the aggregates'.
        self._kind = kind
        self._rest = rest
        self._recorder = recorder
        self._emit = recorder.event
        self._quiet_after = quiet_after
        self._clock = clock
        #: Per symbol: the last id seen at the last look, when it last changed, and when the
        #: next quiet check is due.
        self._seen: dict[str, int | None] = {}
        self._changed: dict[str, float] = {}
        self._interval: dict[str, float] = {}
        for symbol in tracker.symbols:
            self.track(symbol)
        #: Connects not yet followed up: (due at, symbols, their last ids at the connect).
        self._connects: list[tuple[float, list[str], dict[str, int | None]]] = []
        self._wake = asyncio.Event()

    def track(self, symbol: str) -> None:
        """Watch `symbol` for quiet (at start, and for a listing added mid-run)."""
        self._seen[symbol] = self._tracker.last_id(symbol)
        self._changed[symbol] = self._clock()
        self._interval[symbol] = self._quiet_after

    def untrack(self, symbol: str) -> None:
        for table in (self._seen, self._changed, self._interval):
            table.pop(symbol, None)

    def connected(self, symbols: Iterable[str]) -> None:
        """A connection carrying `symbols` completed its handshake."""
        wanted = list(symbols)
        last_id = self._tracker.last_id
        marks = {s: last_id(s) for s in wanted}
        self._connects.append((self._clock() + CONNECT_GRACE_SECONDS, wanted, marks))
        self._wake.set()

    async def run(self) -> None:
        """Follow up connects and quiet symbols until cancelled."""
        while True:
            due = self._due()
            if due:
                await self.check(due, "")
            try:
                async with asyncio.timeout(TICK_SECONDS):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()

    def _due(self) -> list[str]:
        now = self._clock()
        last_id = self._tracker.last_id
        due: dict[str, None] = {}
        keep = []
        for at, symbols, marks in self._connects:
            if at > now:
                keep.append((at, symbols, marks))
                continue
            for symbol in symbols:
                if symbol in self._seen and last_id(symbol) == marks[symbol]:
                    due[symbol] = None
        self._connects = keep
        for symbol, seen in self._seen.items():
            current = last_id(symbol)
            if current != seen:
                self._seen[symbol] = current
                self._changed[symbol] = now
                self._interval[symbol] = self._quiet_after
            elif now - self._changed[symbol] >= self._interval[symbol]:
                due[symbol] = None
                self._changed[symbol] = now
                self._interval[symbol] = min(self._interval[symbol] * 2, QUIET_MAX_SECONDS)
        return [s for s in due if last_id(s) is not None]

    async def check(self, symbols: list[str], when: str) -> int:
        """Ask the exchange for the newest id of each symbol and open gaps up to it; return how
        many ids that found. Exchange errors are reported and leave the symbols for later."""
        found = 0
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def one(symbol: str) -> None:
            nonlocal found
            async with semaphore:
                try:
                    newest = await newest_id(self._rest, self._kind, symbol)
                except GeoRestrictedError:
                    raise
                except ExchangeError as exc:
                    self._emit(
                        EventKind.BACKFILL_ERROR,
                        f"{symbol}: cannot ask the exchange for its newest trade: {exc}",
                    )
                    return
            ahead = 0
            if newest is not None:
                ahead = self._tracker.advance(
                    symbol, newest, f" (the exchange is ahead of the stream{when})"
                )
            self._recorder.reconciled(ahead)
            found += ahead

        async with asyncio.TaskGroup() as tg:
            for symbol in symbols:
                tg.create_task(one(symbol))
        return found

    async def tail(self) -> int:
        """At stop: record what each symbol is known to be missing up to the exchange's
        newest id (the caller bounds the time this may take)."""
        symbols = [s for s in self._tracker.symbols if self._tracker.last_id(s) is not None]
        return await self.check(symbols, " at stop")
