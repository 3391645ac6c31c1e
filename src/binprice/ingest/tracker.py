"""Per-symbol trade-id bookkeeping: what is new, what is a duplicate, what is missing.

Binance Spot trade ids are per symbol and grow by exactly one per trade (protocol notes §8), so
the highest id handed to the writer is the whole state: a lower or equal id is a duplicate
(overlapping or redundant connections, re-sends) unless it fills a gap, and a jump past
`last + 1` is a gap, handed to the gap keeper before the trade that revealed it is buffered.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from binprice.completeness.gapkeeper import GapKeeper
from binprice.events import EventKind
from binprice.exchange.protocol import SeriesRecord
from binprice.ingest.buffer import TradeBuffer
from binprice.ingest.recorder import Recorder
from binprice.ingest.stats import SymbolCounters


@dataclass(slots=True)
class SymbolTrack:
    last_id: int | None
    counters: SymbolCounters


class Tracker:
    """Decides for every streamed trade: store it, drop it as a duplicate, or open a gap.

    Trades come from numbered sources (connections); for each accepted trade the source that
    delivered it first is counted, which is what `--redundancy` reports.
    """

    def __init__(
        self,
        gaps: GapKeeper,
        buffer: TradeBuffer,
        recorder: Recorder,
        *,
        max_trades: int | None = None,
        limit_reached: asyncio.Event | None = None,
    ) -> None:
        self._gaps = gaps
        self._buffer = buffer
        self._recorder = recorder
        self._tracks: dict[str, SymbolTrack] = {}
        self._first = recorder.first_deliveries
        self.accepted = 0
        self._max = max_trades
        self._limit_reached = limit_reached
        self.accepting = True

    def start(self, symbol: str, last_known: int | None) -> None:
        """Begin tracking `symbol` after `last_known`, the highest id stored or spooled."""
        self._tracks[symbol] = SymbolTrack(last_known, self._recorder.hot_counters(symbol))

    def stop(self, symbol: str) -> None:
        """Stop tracking `symbol` (it no longer trades): its frames are ignored from now on."""
        self._tracks.pop(symbol, None)

    @property
    def symbols(self) -> list[str]:
        return list(self._tracks)

    def last_id(self, symbol: str) -> int | None:
        """The highest id accepted (or known before the run) for `symbol`."""
        track = self._tracks.get(symbol)
        return None if track is None else track.last_id

    def on_trade(self, trade: SeriesRecord, source: int = 0) -> None:
        """The hot path: called for every trade frame of every connection."""
        track = self._tracks.get(trade.symbol)
        if track is None or not self.accepting:
            return
        tid = trade.trade_id
        last = track.last_id
        if last is not None and tid <= last:
            if self._gaps.claim(trade.symbol, tid):
                self._accept(track, trade, source)
            else:
                track.counters.duplicates += 1
            return
        if last is not None and tid > last + 1:
            self._gaps.open(trade.symbol, last + 1, tid - 1)
        track.last_id = tid
        self._accept(track, trade, source)

    def skip(self, symbol: str, trade_id: int) -> None:
        """A futures trade that is not stored (`X` other than MARKET, docs/futures.md §3) took
        `trade_id`: it counts as seen (it opens no gap; the ids before it that never came do)
        and is recorded as a hole, since no REST answer or archive will ever hold it."""
        track = self._tracks.get(symbol)
        if track is None or not self.accepting:
            return
        last = track.last_id
        if last is not None and trade_id <= last:
            if self._gaps.claim(symbol, trade_id):  # a gap waited for it: it never will come
                self._gaps.not_stored(symbol, trade_id)
            return
        if last is not None and trade_id > last + 1:
            self._gaps.open(symbol, last + 1, trade_id - 1)
        track.last_id = trade_id
        self._gaps.not_stored(symbol, trade_id)

    def advance(self, symbol: str, newest: int, why: str) -> int:
        """The exchange says `symbol`'s newest id is `newest`: open a gap for everything past
        the last id seen; return how many ids that is (0 if the stream is already there)."""
        track = self._tracks.get(symbol)
        if track is None or track.last_id is None or newest <= track.last_id:
            return 0
        first = track.last_id + 1
        track.last_id = newest
        self._gaps.open(symbol, first, newest, why=why, kind=EventKind.RECONCILED)
        return newest - first + 1

    def _accept(self, track: SymbolTrack, trade: SeriesRecord, source: int) -> None:
        track.counters.received += 1
        self._first[source] += 1
        self._buffer.put(trade)
        self.accepted += 1
        if self._max is not None and self.accepted >= self._max:
            self.accepting = False
            if self._limit_reached is not None:
                self._limit_reached.set()
