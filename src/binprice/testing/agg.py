"""Aggregate trades: the fills of one taker order at one price, under an id of their own.

Binance aggregates "trades that fill at the time, from the same taker order, with the same
price" (REST ``aggTrades``, stream ``@aggTrade``). Aggregate ids are their own sequence,
contiguous per symbol, and the trade-id ranges ``f..l`` of consecutive aggregates tile the trade
id line. The book stores where each aggregate starts in the trade record and its event time,
16 bytes an aggregate; everything else is read from the trades.
"""

from __future__ import annotations

import bisect
from array import array


class AggregateBook:
    """One symbol's aggregates, by the record index of their first trade."""

    def __init__(self, first_id: int) -> None:
        #: Id of the first aggregate; aggregate ``k`` (0-based) has id ``first_id + k``.
        self.first_id = first_id
        self._starts = array("q")
        self._events = array("q")  # µs

    def __len__(self) -> int:
        return len(self._starts)

    def open(self, first_trade: int, event_time_us: int) -> None:
        """Start a new aggregate at trade index ``first_trade`` (the previous one ends there)."""
        self._starts.append(first_trade)
        self._events.append(event_time_us)

    def trades_of(self, agg: int, trade_count: int) -> tuple[int, int]:
        """Trade indexes ``start, stop`` of aggregate ``agg``; ``trade_count`` ends the last."""
        stop = self._starts[agg + 1] if agg + 1 < len(self._starts) else trade_count
        return self._starts[agg], stop

    def of_trade(self, index: int) -> int:
        """The aggregate that trade ``index`` belongs to."""
        return bisect.bisect_right(self._starts, index) - 1

    def event_time(self, agg: int) -> int:
        """Event time ``E`` of aggregate ``agg`` (and of each of its trades), µs."""
        return self._events[agg]

    def index_of_id(self, agg_id: int) -> int:
        """Index of the aggregate with id ``agg_id`` (may be out of range)."""
        return agg_id - self.first_id
