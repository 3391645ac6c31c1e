"""Exactly once, as a property: arbitrary drop points, overlaps and re-sends, then backfill.

Drives the real `Tracker`, `GapKeeper` and `GapSet` with no database: connections are segments
of the produced id line (a new one starts anywhere after the previous one started, so segments
overlap or leave holes), frames are re-sent at random, consecutive connections interleave (a
rotation's overlap), and the keeper fetches its queued gaps from a stand-in exchange (the outside
world, faked at the REST boundary) at random moments. Whatever happens, the accepted ids are the
whole line from the first delivered id to the last, each once, except ids cut by
`backfill_max`, which are recorded as skipped.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from binprice.binance import Trade
from binprice.ingest.gapkeeper import GapKeeper
from binprice.ingest.gapset import GapSet
from binprice.ingest.rest import RestClient
from binprice.ingest.stats import IngestStats
from binprice.ingest.tracker import Tracker

BASE = 6_329_162_611
SYMBOL = "BTCUSDT"


def _trade(tid: int) -> Trade:
    return Trade(SYMBOL, tid, Decimal("1.5"), Decimal("0.1"), 1_779_941_620_983, False)


class _Buffer:
    """Stands in for TradeBuffer: the tracker and the keeper only call put() here."""

    def __init__(self) -> None:
        self.items: list[Trade] = []

    def put(self, trade: Trade) -> None:
        self.items.append(trade)


class _Exchange:
    """The REST side of an exchange that has every id of the line (historicalTrades)."""

    rate_limited = 0

    async def historical_trades(self, symbol: str, from_id: int, attempts: int) -> list[Trade]:
        return [_trade(i) for i in range(from_id, from_id + 1000)]


segment = st.tuples(st.integers(0, 60), st.integers(0, 120))  # (start after previous, length)


@settings(max_examples=300, deadline=None)
@given(
    segments=st.lists(segment, min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
    dup_rate=st.sampled_from([0.0, 0.05, 0.5]),
    backfill_max=st.one_of(st.none(), st.integers(0, 40)),
)
def test_tracker_stores_every_id_once_whatever_the_drops_and_resends(
    segments: list[tuple[int, int]], seed: int, dup_rate: float, backfill_max: int | None
) -> None:
    """Stored (+ skipped) ids equal the produced line from the first to the last delivered id."""
    rng = random.Random(seed)
    buffer = _Buffer()
    stats = IngestStats()
    keeper = GapKeeper("unused", buffer, stats, lambda kind, message: None,  # type: ignore[arg-type]
                       backfill_max=backfill_max)  # fmt: skip
    tracker = Tracker(keeper, buffer, stats)  # type: ignore[arg-type]
    tracker.start(SYMBOL, None)
    exchange: RestClient = _Exchange()  # type: ignore[assignment]

    def backfill() -> None:
        async def fill() -> None:
            while await keeper.fetch_next(exchange):
                pass

        asyncio.run(fill())

    # Connections: each starts at or after the previous one's start, delivers a run of ids.
    start, runs = BASE, []
    for offset, length in segments:
        start += offset
        frames = []
        for tid in range(start, start + length):
            frames.append(tid)
            if rng.random() < dup_rate:
                frames.append(tid)  # re-sent frame
        runs.append(frames)
    delivered = [tid for run in runs for tid in run]
    if not delivered:
        return
    # Consecutive connections overlap in time: interleave each with the tail of the previous.
    stream: list[int] = []
    pending: list[int] = []
    for run in runs:
        merged = []
        a, b = pending, list(run)
        while a or b:
            take_a = a and (not b or rng.random() < 0.5)
            merged.append((a if take_a else b).pop(0))
        cut = rng.randint(0, len(merged))
        stream += merged[:cut]
        pending = merged[cut:]
    stream += pending
    for tid in stream:
        tracker.on_trade(_trade(tid))
        if rng.random() < 0.05:
            backfill()
    backfill()

    ids = [t.trade_id for t in buffer.items]
    assert len(ids) == len(set(ids)), "an id was accepted twice"
    skipped = [(a, b) for _, a, b, state in keeper.rows.pending if state == "skipped"]
    cut_ids = {i for a, b in skipped for i in range(a, b + 1)}
    assert not cut_ids & set(ids)
    first = stream[0]
    assert set(ids) | cut_ids == set(range(first, max(stream) + 1))
    assert keeper.missing(SYMBOL) == 0
    if backfill_max is None:
        assert not skipped


@given(
    ops=st.lists(
        st.tuples(
            st.sampled_from(["add", "claim", "remove"]), st.integers(0, 60), st.integers(0, 8)
        ),
        max_size=40,
    )
)
def test_gapset_matches_a_plain_set_model(ops: list[tuple[str, int, int]]) -> None:
    """GapSet add/claim/remove behave like the same operations on a set of ids."""
    gaps, model = GapSet(), set[int]()
    for op, first, width in ops:
        last = first + width
        if op == "add":
            gaps.add(first, last)
            model |= set(range(first, last + 1))
        elif op == "remove":
            gaps.remove(first, last)
            model -= set(range(first, last + 1))
        else:
            assert gaps.claim(first) == (first in model)
            model.discard(first)
        covered = [i for a, b in gaps.ranges for i in range(a, b + 1)]
        assert len(covered) == len(set(covered)), "ranges overlap"
        assert set(covered) == model
        assert gaps.missing() == len(model)
