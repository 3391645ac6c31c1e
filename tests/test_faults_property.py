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
import bisect
import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from binprice.completeness.gapkeeper import GapKeeper
from binprice.completeness.gapset import GapSet
from binprice.errors import ExchangeUnavailableError
from binprice.exchange.protocol import WireTrade
from binprice.exchange.rest import RestClient
from binprice.ingest.recorder import Recorder
from binprice.ingest.tracker import Tracker

BASE = 6_329_162_611
SYMBOL = "BTCUSDT"


def _trade(tid: int) -> WireTrade:
    return WireTrade(SYMBOL, tid, Decimal("1.5"), Decimal("0.1"), 1_779_941_620_983, False)


class _Buffer:
    """Stands in for TradeBuffer: the tracker and the keeper only call put() here."""

    def __init__(self) -> None:
        self.items: list[WireTrade] = []

    def put(self, trade: WireTrade) -> None:
        self.items.append(trade)


class _Exchange:
    """The REST side of an exchange that has every id of the line (historicalTrades)."""

    rate_limited = 0

    async def historical_trades(self, symbol: str, from_id: int, attempts: int) -> list[WireTrade]:
        return [_trade(i) for i in range(from_id, from_id + 1000)]


segment = st.tuples(st.integers(0, 60), st.integers(0, 120))  # (start after previous, length)


@settings(max_examples=300, deadline=None)
@given(
    segments=st.lists(segment, min_size=1, max_size=8),
    seed=st.integers(0, 2**32 - 1),
    dup_rate=st.sampled_from([0.0, 0.05, 0.5]),
    backfill_max=st.one_of(st.none(), st.integers(0, 40)),
)
# The model of drops and resends reads best as one loop beside its assertions.
def test_tracker_stores_every_id_once_whatever_the_drops_and_resends(  # noqa: C901
    segments: list[tuple[int, int]], seed: int, dup_rate: float, backfill_max: int | None
) -> None:
    """Stored (+ skipped) ids equal the produced line from the first to the last delivered id."""
    rng = random.Random(seed)
    buffer = _Buffer()
    stats = Recorder()
    keeper = GapKeeper(
        "unused",
        buffer,
        stats,  # type: ignore[arg-type]
        backfill_max=backfill_max,
    )
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


class _FlakyExchange:
    """historicalTrades of an exchange whose id line has holes (`absent`), answering like Binance
    (from the first id >= fromId it has, `page` rows) or, as `flaky` decides, with an empty page
    or an error."""

    rate_limited = 0

    def __init__(self, ids: list[int], page: int, flaky: random.Random, flaky_rate: float):
        self.ids = ids
        self.page = page
        self.flaky = flaky
        self.flaky_rate = flaky_rate

    async def historical_trades(self, symbol: str, from_id: int, attempts: int) -> list[WireTrade]:
        if self.flaky.random() < self.flaky_rate:
            if self.flaky.random() < 0.5:
                return []  # a glitch: no proof of anything
            raise ExchangeUnavailableError("cannot reach the exchange: HTTP 503")
        start = bisect.bisect_left(self.ids, from_id)
        return [_trade(i) for i in self.ids[start : start + self.page]]


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(1, 300),
    absent=st.lists(st.integers(0, 299), max_size=30),
    gaps=st.lists(st.tuples(st.integers(0, 299), st.integers(0, 80)), min_size=1, max_size=6),
    page=st.integers(1, 40),
    flaky_rate=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_empty_pages_and_errors_never_make_a_false_hole(
    *,
    length: int,
    absent: list[int],
    gaps: list[tuple[int, int]],
    page: int,
    flaky_rate: float,
    seed: int,
) -> None:
    """REST answers are a random mix of empty pages, errors and good pages: every id of a gap
    ends stored, still missing (its gap open) or in a recorded hole, and a hole holds only ids
    the exchange never had; once the exchange answers well, every id it has is stored."""
    line = range(BASE, BASE + length)
    never = {BASE + a for a in absent if a < length - 1}  # the newest id exists
    ids = [i for i in line if i not in never]
    exchange = _FlakyExchange(ids, page, random.Random(seed), flaky_rate)
    buffer = _Buffer()
    keeper = GapKeeper(
        "unused",
        buffer,
        Recorder(),  # type: ignore[arg-type]
        backfill_max=None,
        clock=lambda: 0.0,
    )
    opened: set[int] = set()
    for offset, width in gaps:
        first = BASE + min(offset, length - 1)
        last = min(first + width, BASE + length - 1)  # a gap ends at or below an id seen
        keeper.open(SYMBOL, first, last)
        opened |= set(range(first, last + 1))
    rest: RestClient = exchange  # type: ignore[assignment]

    async def rounds(count: int) -> None:
        for _ in range(count):
            await keeper.fetch_next(rest)

    def holes() -> set[int]:
        return {i for _, a, b, s in keeper.rows.pending if s == "hole" for i in range(a, b + 1)}

    asyncio.run(rounds(3 * len(gaps)))
    stored = [t.trade_id for t in buffer.items]
    assert len(stored) == len(set(stored)), "an id was stored twice"
    assert holes() <= never, "a hole holds ids the exchange has"
    still = {i for a, b in keeper._missing[SYMBOL].ranges for i in range(a, b + 1)}
    assert set(stored) | still | holes() == opened
    assert set(stored) <= set(ids)

    exchange.flaky_rate = 0.0  # the exchange recovers: everything it has is fetched
    asyncio.run(rounds(len(keeper._queue) + 1))
    assert set(stored := [t.trade_id for t in buffer.items]) == opened - never
    assert holes() == opened & never
    assert keeper.missing(SYMBOL) == 0
