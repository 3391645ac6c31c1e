"""The gap lifecycle, owned by one object: detected → recorded → fetched → filled (or hole).

A gap is a range of trade ids of one symbol that the run knows exist and does not have. It is
*detected* by the tracker (an id jump on the stream), by reconciliation with the exchange (the
exchange's newest id is past the last one seen), by the spool (a crashed run's chunks), by the
start-up check of the stored ids, or by the buffer (trades that could be neither committed nor
spooled). Whoever detects it calls :meth:`GapKeeper.open`; from then on the keeper alone:

- *records* it: the `gaps` row is committed before any trade beyond the gap (the writers call
  :meth:`flush` before every commit), so a crash can never leave a hole nobody knows of;
- *fetches* it from REST while the stream goes on (:meth:`run`), after a short grace when a
  redundant connection may still deliver it, and not while the database is down; ids that
  arrive late on the stream are *claimed* instead (:meth:`claim`), never stored twice;
- records ids the exchange does not have as a `hole` — only on the exchange's word (a page that
  begins past them), never on an empty answer, which leaves them missing and retried with
  backoff — and the part of a gap beyond `--backfill-max` as `skipped`;
- marks it *filled* once every id in it is committed — decided in the database, so it is true
  even across crashes.

Gaps an earlier run left open are resumed at start (:meth:`resume`) and fetched again. Holes
earlier runs recorded are asked about again (:meth:`recheck`), one a minute, the first at once
(an earlier version recorded holes on mere empty pages): a hole the exchange has trades in is
reopened and fetched like any gap.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Protocol

import psycopg

from binprice.completeness.backfill import PAGE_ATTEMPTS, fetch_missing
from binprice.completeness.gapset import GapSet
from binprice.completeness.series import page_from
from binprice.db.gaprows import GapRows, GapSpan
from binprice.errors import DatabaseError, EmptyPageError, ExchangeError, GeoRestrictedError
from binprice.events import EventKind
from binprice.exchange.endpoints import market_api
from binprice.exchange.protocol import SeriesRecord
from binprice.exchange.rest import RestClient
from binprice.kinds import DEFAULT_KIND, TradeKind
from binprice.markets import DEFAULT_MARKET, Market

#: How often the keeper looks for gaps whose ids have all been committed.
SETTLE_INTERVAL_SECONDS = 1.0
#: After a failed page (its retries spent), a gap waits this long before it is tried again,
#: doubling with each failure of the same gap, up to the cap ...
RETRY_LATER_SECONDS = 30.0
RETRY_LATER_MAX_SECONDS = 900.0
#: ... and after an empty answer (no retry was spent on it, and a glitch is often brief),
#: this long at first.
EMPTY_RETRY_SECONDS = 1.0
#: Recorded holes are asked about again one per this many seconds: 25 weight a minute at most,
#: under 1 % of Binance's budget.
HOLE_RECHECK_SECONDS = 60.0


class GapBuffer(Protocol):
    """Where fetched trades go, and the ids it could keep neither in memory nor on disk (the
    ingest run's bounded buffer): it never blocks."""

    @property
    def spool_error(self) -> str | None: ...

    @property
    def dropped_ready(self) -> asyncio.Event: ...

    def put(self, trade: SeriesRecord) -> None: ...

    def take_dropped(self) -> Mapping[str, Sequence[tuple[int, int]]]: ...


class GapRecorder(Protocol):
    """What the keeper reports (the ingest run's recorder): each call counts and tells at once."""

    def event(self, kind: EventKind, message: str) -> None: ...

    def gap_opened(
        self,
        symbol: str,
        first: int,
        last: int,
        *,
        skipped_to: int | None = None,
        kind: EventKind = EventKind.GAP,
        why: str = "",
        fetching: bool = True,
    ) -> None: ...

    def hole(self, symbol: str, first: int, last: int) -> None: ...

    def backfilled(self, symbol: str, trades: int, from_id: int) -> None: ...

    def rest_rate_limited(self, answers: int) -> None: ...


class GapKeeper:
    """Owns every gap of a run: the missing ids in memory, their rows, their backfill."""

    def __init__(
        self,
        url: str,
        buffer: GapBuffer,
        recorder: GapRecorder,
        *,
        backfill_max: int | None,
        grace: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        market: Market = DEFAULT_MARKET,
        kind: TradeKind = DEFAULT_KIND,
    ) -> None:
        self._buffer = buffer
        self._recorder = recorder
        self._emit = recorder.event
        self._backfill_max = backfill_max
        #: Seconds a gap seen on the stream waits before REST: a redundant connection may
        #: still deliver it.
        self._grace = grace
        self._clock = clock
        #: Every wait of the keeper's loops (settling, the hole rechecks, a gap's grace) is
        #: this, so a test runs them without waiting on real time.
        self._sleep = sleep
        #: The gap rows are of the run's market and kind (ids of trades, or of aggregates).
        self.rows = GapRows(url, market, kind)
        #: Which series' pages fill the gaps (series.py).
        self.kind = kind
        #: The market's historicalTrades needs an API key (the futures'): see `_keyless`.
        #: Aggregate trades never do (`aggTrades` is public on every market).
        self._needs_key = kind is TradeKind.TRADES and market_api(market).historical_needs_key
        self._missing: dict[str, GapSet] = {}
        #: Gaps to fetch, in order: (ready at, symbol, first, last).
        self._queue: deque[tuple[float, str, int, int]] = deque()
        self._wake = asyncio.Event()
        #: Open gaps (recorded or about to be) not yet known to be filled.
        self._unsettled: list[GapSpan] = []
        #: False once the run's last fetches are done (`drain`): gaps found later are recorded
        #: for the next run.
        self._fetching = True
        #: Failures in a row per queued gap, for its backoff.
        self._failures: dict[GapSpan, int] = {}
        #: Holes recorded by earlier runs, still to be asked about again in this one.
        self._recheck: deque[GapSpan] = deque()

    # --- detection: synchronous, called from the hot path and the detectors ------------------

    def open(
        self,
        symbol: str,
        first: int,
        last: int,
        *,
        why: str = "",
        kind: EventKind = EventKind.GAP,
    ) -> None:
        """Ids `first..last` of `symbol` exist on the exchange and are missing here: record
        them and fetch them (the older part of a gap over `backfill_max` is recorded as
        skipped instead)."""
        limit = self._backfill_max
        cut = None
        if limit is not None and last - first + 1 > limit:
            cut = last - limit  # first..cut is skipped, cut+1..last fetched
            self.rows.add(symbol, first, cut, "skipped")
        self._recorder.gap_opened(
            symbol, first, last, skipped_to=cut, kind=kind, why=why, fetching=self._fetching
        )
        if cut is not None:
            first = cut + 1
        if first > last:
            return
        self._track(symbol, first, last, self._grace)
        self.rows.add(symbol, first, last, "open")

    def _track(self, symbol: str, first: int, last: int, delay: float) -> None:
        self._missing.setdefault(symbol, GapSet()).add(first, last)
        self._unsettled.append((symbol, first, last))
        self._queue.append((self._clock() + delay, symbol, first, last))
        self._wake.set()

    def claim(self, symbol: str, trade_id: int) -> bool:
        """A trade at or below the last id seen arrived: True if it fills a gap."""
        missing = self._missing.get(symbol)
        return missing is not None and bool(missing) and missing.claim(trade_id)

    def not_stored(self, symbol: str, trade_id: int) -> None:
        """`trade_id` went to a futures trade binprice does not store (docs/futures.md §3): a
        hole of one id, recorded with the next flush (no REST answer or archive holds it)."""
        self.rows.add(symbol, trade_id, trade_id, "hole")

    def missing(self, symbol: str) -> int:
        """How many ids of `symbol` are still to be fetched."""
        found = self._missing.get(symbol)
        return found.missing() if found else 0

    def _absorb_drops(self) -> None:
        """Turn what the buffer had to drop into gaps (their rows go in with the next flush)."""
        dropped = self._buffer.take_dropped()
        if not dropped:
            return
        total = 0
        for symbol, ranges in dropped.items():
            for first, last in ranges:
                total += last - first + 1
                self._track(symbol, first, last, 0.0)
                self.rows.add(symbol, first, last, "open")
        reason = self._buffer.spool_error or "the spool failed"
        self._emit(
            EventKind.DROPPED,
            f"{total:,} trades could be neither committed nor spooled ({reason}); "
            "their ids are recorded as gaps and fetched again from REST later",
        )

    # --- recording ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Commit every pending gap row. The writers call this before every commit; database
        errors propagate (the writers treat them like a failed commit and retry)."""
        self._absorb_drops()
        await self.rows.flush()

    async def settle(self) -> int:
        """Mark filled the open gaps whose ids are all committed; return how many."""
        waiting = {(s, a, b) for _, s, a, b in self._queue}
        candidates = [
            g for g in self._unsettled if g not in waiting and not self._still_missing(*g)
        ]
        if not candidates:
            return 0
        done = await self.rows.settle(candidates)
        for gap in done:
            self._unsettled.remove(gap)
        return len(done)

    def _still_missing(self, symbol: str, first: int, last: int) -> bool:
        found = self._missing.get(symbol)
        return found is not None and bool(found.within(first, last))

    @property
    def unsettled(self) -> int:
        return len(self._unsettled)

    def open_gaps(self) -> dict[str, tuple[int, int]]:
        """Per symbol with any, the open gaps not yet known to be filled and the ids they
        still miss."""
        counts = Counter(symbol for symbol, _, _ in self._unsettled)
        return {symbol: (n, self.missing(symbol)) for symbol, n in counts.items()}

    def _keyless(self, rest: RestClient) -> bool:
        """True if this market's `historicalTrades` needs an API key and `rest` has none."""
        return self._needs_key and not rest.has_api_key

    # --- start-up -------------------------------------------------------------------------

    async def resume(self, symbols: Iterable[str]) -> dict[str, int]:
        """Fetch again what gaps left open by earlier runs still miss (only those ids); return
        per symbol the highest id of those gaps (ids up to it are known, not to be found
        again)."""
        tops: dict[str, int] = {}
        for (symbol, first, last), missing in await self.rows.open_gaps(list(symbols)):
            tops[symbol] = max(tops.get(symbol, last), last)
            self._unsettled.append((symbol, first, last))
            for a, b in missing:
                self._missing.setdefault(symbol, GapSet()).add(a, b)
                self._queue.append((self._clock(), symbol, a, b))
            if missing:
                self._emit(
                    EventKind.GAP_RESUMED,
                    f"{symbol}: gap {first}..{last} left open by an earlier run; fetching its "
                    f"{sum(b - a + 1 for a, b in missing):,} missing trades",
                )
        self._recheck.extend(await self.rows.holes(list(symbols)))
        self._wake.set()
        return tops

    # --- fetching -------------------------------------------------------------------------

    async def run(self, rest: RestClient, writable: asyncio.Event) -> None:
        """Fetch queued gaps (oldest first) and settle filled ones, until cancelled.

        `writable` is set while the database takes commits: nothing is fetched while it is
        down (it could only be spooled, and the REST budget is better spent later).
        """
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._settle_forever())
            tg.create_task(self._watch_drops())
            tg.create_task(self._recheck_holes(rest, writable))
            await self._fetch_forever(rest, writable)

    async def _settle_forever(self) -> None:
        while True:
            await self._sleep(SETTLE_INTERVAL_SECONDS)
            await self.settle()

    async def _watch_drops(self) -> None:
        while True:
            await self._buffer.dropped_ready.wait()
            self._absorb_drops()

    async def _recheck_holes(self, rest: RestClient, writable: asyncio.Event) -> None:
        if self._keyless(rest):
            return  # nothing to ask: historicalTrades needs the key this run does not have
        while self._recheck:
            if not writable.is_set():
                await writable.wait()
            hole = self._recheck.popleft()
            try:
                await self.recheck(rest, *hole)
            except GeoRestrictedError:
                raise
            except (ExchangeError, DatabaseError, psycopg.Error) as exc:
                symbol, first, last = hole
                self._emit(
                    EventKind.BACKFILL_ERROR,
                    f"{symbol}: cannot ask again about the hole {first}..{last}: {exc}; later",
                )
                self._recheck.append(hole)
            await self._sleep(HOLE_RECHECK_SECONDS)

    async def recheck(self, rest: RestClient, symbol: str, first: int, last: int) -> bool:
        """Ask the exchange again about the recorded hole `first..last`; if it has trades
        inside (its page for `fromId=first` begins inside the hole), reopen the gap and fetch
        it. An empty page proves nothing: the hole is left as it is."""
        page = await page_from(rest, self.kind, symbol, first, PAGE_ATTEMPTS)
        if not page or page[0].trade_id > last:
            return False
        await self.rows.reopen(symbol, first, last)
        self._track(symbol, first, last, 0.0)
        self._emit(
            EventKind.GAP,
            f"{symbol}: trades {first}..{last} were recorded as a hole, but the exchange has "
            f"trades from {page[0].trade_id}; reopened, fetching them",
        )
        return True

    async def _fetch_forever(self, rest: RestClient, writable: asyncio.Event) -> None:
        while True:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            wait = min(self._queue)[0] - self._clock()
            if wait > 0:
                await self._sleep(wait)
            if not writable.is_set():
                await writable.wait()
            await self.fetch_next(rest)

    async def fetch_next(self, rest: RestClient) -> bool:
        """Fetch the queued gap due first now (whatever its grace); False if none is queued.

        A gap whose pages cannot be had is reported and queued again for later.
        """
        if not self._queue:
            return False
        entry = min(self._queue)
        self._queue.remove(entry)
        await self._fetch_entry(rest, entry)
        return True

    async def _fetch_entry(self, rest: RestClient, entry: tuple[float, str, int, int]) -> None:
        _, symbol, first, last = entry
        try:
            await self._fetch(rest, symbol, first, last)
        except GeoRestrictedError:
            raise
        except asyncio.CancelledError:
            self._queue.appendleft(entry)  # stopped mid-gap: `drain` (or the next run) goes on
            raise
        except ExchangeError as exc:
            failures = self._failures.get((symbol, first, last), 0)
            self._failures[(symbol, first, last)] = failures + 1
            base = EMPTY_RETRY_SECONDS if isinstance(exc, EmptyPageError) else RETRY_LATER_SECONDS
            delay = min(RETRY_LATER_MAX_SECONDS, base * 2**failures)
            self._emit(
                EventKind.BACKFILL_ERROR,
                f"{symbol}: backfill of {first}..{last} failed: {exc}; retrying in {delay:g} s",
            )
            self._queue.append((self._clock() + delay, symbol, first, last))
        else:
            self._failures.pop((symbol, first, last), None)
        finally:
            self._recorder.rest_rate_limited(rest.rate_limited)

    async def drain(self, rest: RestClient) -> None:
        """At stop, once the stream is closed: fetch every gap queued so far, each once and
        whatever its grace (no connection can deliver it any more), so that a stop right after
        a drop leaves open only what REST cannot give now. The caller bounds the time; what is
        not fetched stays recorded and open for the next run."""
        for entry in sorted(self._queue):
            if entry in self._queue:
                self._queue.remove(entry)
                await self._fetch_entry(rest, entry)

    def stop_fetching(self) -> None:
        """Nothing more is fetched in this run: gaps found from now on (the tail the exchange
        is ahead at stop) are recorded for the next run, and say so."""
        self._fetching = False

    async def _fetch(self, rest: RestClient, symbol: str, first: int, last: int) -> None:
        missing = self._missing.setdefault(symbol, GapSet())
        if self._keyless(rest):
            await self._fetch_recent(rest, symbol, missing, first, last)
            return
        async for page in fetch_missing(rest, symbol, missing, first, last, kind=self.kind):
            for a, b in page.holes:
                missing.remove(a, b)
                self.rows.add(symbol, a, b, "hole")
                self._recorder.hole(symbol, a, b)
            taken = self._take(missing, page.trades)
            first_id = page.trades[0].trade_id if page.trades else 0
            self._recorder.backfilled(symbol, taken, first_id)

    async def _fetch_recent(
        self, rest: RestClient, symbol: str, missing: GapSet, first: int, last: int
    ) -> None:
        """A futures gap without an API key: what the newest trades (`trades`, no key) hold of
        it is taken; the ids older than the oldest of them are recorded as skipped, with why
        (docs/futures.md §4: only `historicalTrades` reaches them, and it needs a key); ids
        inside their window they lack are holes (non-market trades)."""
        recent = await rest.recent_trades(symbol, PAGE_ATTEMPTS)
        oldest = recent[0].trade_id if recent else last + 1
        newest = recent[-1].trade_id if recent else last
        taken = self._take(missing, [t for t in recent if first <= t.trade_id <= last])
        # What is still missing up to the newest trade served, the taken ids out already.
        for a, b in missing.within(first, min(last, newest)):
            missing.remove(a, b)
            if a < oldest:
                old = min(b, oldest - 1)
                self.rows.add(symbol, a, old, "skipped")
                self._emit(
                    EventKind.GAP_SKIPPED,
                    f"{symbol}: trades {a}..{old} are older than the newest {len(recent):,} the "
                    "exchange serves without an API key; recorded as skipped (set "
                    "BINPRICE_API_KEY to fetch them, or import the day's archive file)",
                )
                a = old + 1
            if a <= b:  # inside the window served: trades not stored anywhere (§3)
                self.rows.add(symbol, a, b, "hole")
                self._recorder.hole(symbol, a, b)
        self._recorder.backfilled(symbol, taken, recent[0].trade_id if recent else 0)

    def _take(self, missing: GapSet, trades: Sequence[SeriesRecord]) -> int:
        put = self._buffer.put
        taken = 0
        for trade in trades:
            if missing.claim(trade.trade_id):
                put(trade)
                taken += 1
        return taken

    async def close(self) -> None:
        await self.rows.close()
