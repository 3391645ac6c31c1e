"""The test exchange's market generator on its own: determinism, record, aggregates."""

from __future__ import annotations

import itertools
import json
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from binprice.exchange.protocol import decode_frame
from binprice.testing import TradeGenerator

NOW_US = 1_779_941_620_983_000


def market(generator: TradeGenerator) -> list[tuple[int, Decimal, Decimal, bool]]:
    """What was traded, without when."""
    return [(t.trade_id, t.price, t.quantity, t.is_buyer_maker) for t in generator.trades()]


def test_generator_is_deterministic_and_on_tick() -> None:
    """Same seed, same trades; prices on the tick, quantities on the step."""
    a, b = TradeGenerator("BTCUSDT", 7), TradeGenerator("BTCUSDT", 7)
    assert a.produce(500, NOW_US) == b.produce(500, NOW_US)
    trades = a.trades()
    assert all(t.price % Decimal("0.01") == 0 for t in trades)
    assert all(t.quantity % Decimal("0.00001") == 0 and t.quantity > 0 for t in trades)
    assert TradeGenerator("BTCUSDT", 8).produce(5, 1) != TradeGenerator("BTCUSDT", 7).produce(5, 1)
    assert TradeGenerator("SOLUSDT").first_id == TradeGenerator("SOLUSDT", 3).first_id


@given(
    seed=st.integers(0, 2**32),
    steps=st.lists(st.tuples(st.integers(1, 40), st.integers(0, 5000)), min_size=1, max_size=20),
)
def test_generator_invariants_hold_for_any_seed_and_batching(
    seed: int, steps: list[tuple[int, int]]
) -> None:
    """Ids +1, T never decreasing, E >= T, payloads equal the record, whatever the batching."""
    generator, now, payloads = TradeGenerator("ETHUSDT", seed), NOW_US, []
    for count, advance in steps:
        now += advance
        made = generator.produce(count, now)
        assert count <= len(made) < count + 5  # whole orders: at most 4 fills past the count
        payloads += made
    trades = generator.trades()
    assert len(trades) == len(payloads)
    assert [t.trade_id for t in trades] == list(range(4049338706, 4049338706 + len(trades)))
    assert all(a.time_ms <= b.time_ms for a, b in itertools.pairwise(trades))
    assert [decode_frame(p) for p in payloads] == trades
    assert all(json.loads(p)["E"] >= json.loads(p)["T"] for p in payloads)
    assert all(generator.time_us(i) <= now for i in range(len(generator)))
    # What is traded does not depend on how it was asked for: one batch gives the same market.
    whole = TradeGenerator("ETHUSDT", seed)
    whole.produce(len(trades), NOW_US)
    assert market(whole)[: len(trades)] == market(generator)


@given(seed=st.integers(0, 2**32), count=st.integers(1, 300))
def test_aggregates_tile_the_trades_one_order_one_price_each(seed: int, count: int) -> None:
    """Aggregate ids +1, f..l ranges tile the ids, each shares T, price and side, q sums."""
    generator = TradeGenerator("BTCUSDT", seed)
    generator.produce(count, NOW_US + 10_000)
    rows = json.loads(generator.agg_rows(0, len(generator.aggregates)))
    trades = generator.trades()
    assert [r["a"] for r in rows] == list(range(3612409850, 3612409850 + len(rows)))
    assert [i for r in rows for i in range(r["f"], r["l"] + 1)] == [t.trade_id for t in trades]
    for row in rows:
        mine = trades[row["f"] - trades[0].trade_id : row["l"] - trades[0].trade_id + 1]
        assert {(t.time_ms, t.price, t.is_buyer_maker) for t in mine} == {
            (row["T"], Decimal(row["p"]), row["m"])
        }
        assert sum(t.quantity for t in mine) == Decimal(row["q"])
    # The stream payload of an aggregate is its REST row plus the event fields.
    frame = json.loads(generator.agg_payload(0))
    assert frame["e"] == "aggTrade" and frame["s"] == "BTCUSDT" and frame["E"] >= frame["T"]
    assert {k: v for k, v in frame.items() if k not in ("e", "E", "s")} == rows[0]


def test_times_spread_over_the_interval_in_real_microseconds() -> None:
    """Orders of one call get increasing times across the interval since the previous call."""
    generator = TradeGenerator("BTCUSDT", 3)
    generator.produce(1, NOW_US)
    generator.produce(400, NOW_US + 50_000)
    times = [generator.time_us(i) for i in range(1, len(generator))]
    assert times[0] >= NOW_US and times[-1] <= NOW_US + 50_000
    assert len(set(times)) > 100 and len({t % 1000 for t in times}) > 50  # not ms x 1000
    micro = json.loads(generator.payload(7, microseconds=True))
    milli = json.loads(generator.payload(7))
    assert micro["T"] == generator.time_us(7) and micro["T"] // 1000 == milli["T"]
    assert micro["E"] // 1000 == milli["E"]


def test_a_limit_cuts_the_last_order_and_ends_its_aggregate() -> None:
    """produce(limit=) never exceeds the limit; the record ends on a complete aggregate."""
    generator = TradeGenerator("BTCUSDT", 5)
    assert len(generator.produce(1000, NOW_US, limit=37)) == 37
    rows = json.loads(generator.agg_rows(0, len(generator.aggregates)))
    assert rows[-1]["l"] == generator.next_id - 1


def test_since_keeps_a_rare_symbols_trade_near_its_due_time() -> None:
    """A paced symbol produces once every 100 s: with `since_us` (the producer's last tick)
    its trade is dated within that tick, not anywhere in the 100 s since its previous trade."""
    from binprice.testing.generator import TradeGenerator

    gen = TradeGenerator("RAREUSDT", seed=3)
    start = 1_800_000_000_000_000
    gen.produce(1, start)
    now = start + 100_000_000
    tick = now - 20_000
    payloads = gen.produce(1, now, since_us=tick)
    times = [gen.time_us(i) for i in range(len(gen) - len(payloads), len(gen))]
    assert all(tick <= t <= now for t in times)
