"""Per-symbol trade-id bookkeeping: what is new, what is a duplicate, what is missing.

Binance Spot trade ids are per symbol and grow by exactly one per trade (protocol notes §8), so
the highest id handed to the writer is the whole state: a lower or equal id is a duplicate
(overlapping connections, re-sends), a jump past `last + 1` is a gap. Ids inside a gap that still
arrive late (say, from the connection being retired) fill it; the rest is fetched by REST.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from binprice.binance import Trade
from binprice.ingest.buffer import TradeBuffer
from binprice.ingest.stats import IngestStats, SymbolCounters


@dataclass(slots=True)
class GapSet:
    """Disjoint inclusive id ranges still missing for one symbol."""

    ranges: list[list[int]] = field(default_factory=list)

    def add(self, first: int, last: int) -> None:
        """Note `first..last` as missing (ids already noted are not noted twice)."""
        self.remove(first, last)
        self.ranges.append([first, last])

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def missing(self) -> int:
        return sum(b - a + 1 for a, b in self.ranges)

    def claim(self, trade_id: int) -> bool:
        """Remove `trade_id` if it is missing; True if it was."""
        for i, (first, last) in enumerate(self.ranges):
            if first <= trade_id <= last:
                if first == last:
                    del self.ranges[i]
                elif trade_id == first:
                    self.ranges[i][0] = first + 1
                elif trade_id == last:
                    self.ranges[i][1] = last - 1
                else:
                    self.ranges[i][1] = trade_id - 1
                    self.ranges.insert(i + 1, [trade_id + 1, last])
                return True
        return False

    def remove(self, first: int, last: int) -> None:
        """Forget [first, last] (ids that will never come: a confirmed hole)."""
        kept: list[list[int]] = []
        for a, b in self.ranges:
            if b < first or a > last:
                kept.append([a, b])
                continue
            if a < first:
                kept.append([a, first - 1])
            if b > last:
                kept.append([last + 1, b])
        self.ranges = kept

    def within(self, first: int, last: int) -> list[tuple[int, int]]:
        """The still-missing parts of [first, last]."""
        return [(max(a, first), min(b, last)) for a, b in self.ranges if a <= last and b >= first]


@dataclass(slots=True)
class SymbolTrack:
    last_id: int | None
    counters: SymbolCounters
    gaps: GapSet = field(default_factory=GapSet)


OnGap = Callable[[str, int, int], None]


def _ignore(symbol: str, first: int, last: int) -> None:
    return None


class Tracker:
    """Decides for every streamed trade: store it, drop it as a duplicate, or note a gap.

    `on_gap(symbol, first, last)` is called for every id range to fetch, synchronously and
    before the trade that revealed it is buffered, so the gap can be recorded before anything
    beyond it is committed. A gap wider than `backfill_max` ids is cut: its newest
    `backfill_max` ids are fetched (so the data is whole from there to the live stream) and
    the older part goes to `on_skip`, to be recorded, never silently dropped.
    """

    def __init__(
        self,
        buffer: TradeBuffer,
        stats: IngestStats,
        on_gap: OnGap,
        max_trades: int | None,
        on_limit: Callable[[], None],
        *,
        backfill_max: int | None = None,
        on_skip: OnGap = _ignore,
    ) -> None:
        self._buffer = buffer
        self._stats = stats
        self._on_gap = on_gap
        self._on_skip = on_skip
        self.backfill_max = backfill_max
        self.tracks: dict[str, SymbolTrack] = {}
        self.accepted = 0
        self._max = max_trades
        self._on_limit = on_limit
        self.accepting = True

    def start(self, symbol: str, last_stored: int | None) -> None:
        """Begin tracking `symbol`, resuming after the last id already in the database."""
        self.tracks[symbol] = SymbolTrack(last_stored, self._stats.symbol(symbol))

    def last_id(self, symbol: str) -> int | None:
        """The highest id accepted (or stored before the run) for `symbol`."""
        track = self.tracks.get(symbol)
        return None if track is None else track.last_id

    def on_trade(self, trade: Trade) -> None:
        """The hot path: called for every trade frame of every connection."""
        track = self.tracks.get(trade.symbol)
        if track is None or not self.accepting:
            return
        tid = trade.trade_id
        last = track.last_id
        if last is not None and tid <= last:
            if track.gaps and track.gaps.claim(tid):
                self._accept(track, trade)
            else:
                track.counters.duplicates += 1
            return
        if last is not None and tid > last + 1:
            self.add_gap(trade.symbol, last + 1, tid - 1)
        track.last_id = tid
        self._accept(track, trade)

    def add_gap(self, symbol: str, first: int, last: int) -> None:
        """Ids `first..last` of `symbol` are missing: fetch them (up to `backfill_max`)."""
        track = self.tracks[symbol]
        track.counters.gaps += 1
        limit = self.backfill_max
        if limit is not None and last - first + 1 > limit:
            cut = last - limit  # first..cut is skipped, cut+1..last fetched
            track.counters.skipped += cut - first + 1
            self._on_skip(symbol, first, cut)
            first = cut + 1
        if first <= last:
            track.gaps.add(first, last)
            self._on_gap(symbol, first, last)

    def resume_gap(self, symbol: str, first: int, last: int) -> None:
        """A gap recorded by an earlier run that is still open: fetch what is missing."""
        self.tracks[symbol].gaps.add(first, last)

    def _accept(self, track: SymbolTrack, trade: Trade) -> None:
        track.counters.received += 1
        self._buffer.put(trade)
        self.accepted += 1
        if self._max is not None and self.accepted >= self._max:
            self.accepting = False
            self._on_limit()

    def accept_backfill(self, symbol: str, trades: list[Trade]) -> int:
        """Hand over REST trades that are still missing; return how many were."""
        track = self.tracks[symbol]
        taken = 0
        for trade in trades:
            if track.gaps.claim(trade.trade_id):
                track.counters.received += 1
                track.counters.backfilled += 1
                self._buffer.put(trade)
                taken += 1
        return taken

    def missing_within(self, symbol: str, first: int, last: int) -> bool:
        """True while some id of `first..last` is still waiting to be fetched."""
        track = self.tracks.get(symbol)
        return track is not None and bool(track.gaps.within(first, last))
