"""latest_prices, price_at and price_range against hand-computed answers on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import psycopg
import pytest

from binprice.db.queries import (
    At,
    Latest,
    latest_prices,
    normalize_symbols,
    price_at,
    price_range,
    recorded_symbols,
)
from binprice.errors import UsageError
from tests.trades_data import SMALL, T0, at, combined_fixture, load

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def small(database_url: str) -> Iterator[Conn]:
    """A connection to a database holding the SMALL fixture."""
    load(database_url, SMALL)
    with psycopg.connect(database_url, autocommit=True) as conn:
        # A non-UTC session must not leak into answers.
        conn.execute("SET TimeZone = 'America/New_York'")
        yield conn


def test_recorded_symbols_lists_each_symbol_once_in_order(small: Conn) -> None:
    """The loose index scan finds every distinct symbol."""
    assert recorded_symbols(small) == ["AAAUSDT", "TINYUSDT"]


def test_latest_defaults_to_all_recorded_symbols(small: Conn) -> None:
    """With no symbols, latest answers for every recorded symbol, alphabetically."""
    answer = latest_prices(small)
    assert answer == [
        Latest("AAAUSDT", Decimal("12.00"), at(9), 7),
        Latest("TINYUSDT", Decimal("0.00000001"), at(2), 100),
    ]
    assert answer[0].timestamp.utcoffset() == timedelta(0)


def test_latest_keeps_request_order_case_insensitive_and_leaves_out_unknown(small: Conn) -> None:
    """Symbols are matched upper-cased, deduplicated, in request order; unknown ones are left
    out (the CLI names them)."""
    answer = latest_prices(small, ["tinyusdt", "NOPEUSDT", "aaaUSDT", "TINYUSDT"])
    assert [r.symbol for r in answer] == ["TINYUSDT", "AAAUSDT"]


def test_nothing_found_is_an_empty_list(small: Conn, database_url: str) -> None:
    """No match, or an empty table, is an empty answer, not an error."""
    assert latest_prices(small, ["nopeusdt"]) == []
    with psycopg.connect(database_url) as conn:
        conn.execute("TRUNCATE trades")
        assert latest_prices(conn) == []


def test_invalid_symbol_is_a_usage_error() -> None:
    """Symbols are ASCII letters and digits (one error naming the symbol)."""
    for bad in ("BTC-USDT", "BTCÜSDT", "BTC/USDT", "A" * 21):
        with pytest.raises(UsageError, match="invalid symbol"):
            normalize_symbols([bad])
    assert normalize_symbols(["btcusdt, ethusdt BTCUSDT"]) == ("BTCUSDT", "ETHUSDT")


def _at(conn: Conn, seconds: float, **kwargs: object) -> At:
    (result,) = price_at(conn, at(seconds), ["AAAUSDT"], **kwargs)  # type: ignore[arg-type]
    return result


def test_price_at_exact_time_takes_last_fill_of_that_millisecond(small: Conn) -> None:
    """At a millisecond with two fills, the later fill (higher id) is the price then."""
    result = _at(small, 1)
    assert (result.trade_id, result.price, result.offset_ms) == (3, Decimal("11.50"), 0)


def test_price_at_tie_goes_to_the_earlier_trade(small: Conn) -> None:
    """2s is 1s after trade 3 and 1s before trade 4: the earlier wins."""
    result = _at(small, 2)
    assert (result.trade_id, result.offset_ms, result.requested) == (3, -1000, at(2))


def test_price_at_picks_nearest_trade_on_either_side(small: Conn) -> None:
    """2.4s is nearer trade 4 (3s) than trade 3 (1s)."""
    result = _at(small, 2.4)
    assert (result.trade_id, result.price, result.offset_ms) == (4, Decimal("9.00"), 600)


def test_price_at_before_is_as_of(small: Conn) -> None:
    """--before takes the last trade at or before, even if a later one is nearer."""
    result = _at(small, 2.9, before=True)
    assert (result.trade_id, result.offset_ms) == (3, -1900)


def test_price_at_before_first_trade_uses_the_first_trade(small: Conn) -> None:
    """Before all trades, the nearest is the first trade; as-of finds nothing."""
    assert _at(small, -1).trade_id == 1
    assert price_at(small, at(-1), ["AAAUSDT"], before=True) == []


def test_price_at_after_last_trade_uses_the_last_trade(small: Conn) -> None:
    """After all trades, the nearest is the last one."""
    result = _at(small, 100)
    assert (result.trade_id, result.offset_ms) == (7, -91000)


def test_price_at_within_refuses_far_trades_inclusive_limit(small: Conn) -> None:
    """--within is inclusive: exactly 1s away is accepted; farther is missing."""
    assert _at(small, 2, within=timedelta(seconds=1)).trade_id == 3
    assert price_at(small, at(100), ["AAAUSDT"], within=timedelta(minutes=1)) == []
    # From 100s, AAAUSDT's last trade is 91s away, TINYUSDT's 98s.
    answer = price_at(small, at(100), ["TINYUSDT", "AAAUSDT"], within=timedelta(seconds=95))
    assert [r.symbol for r in answer] == ["AAAUSDT"]


def test_price_range_summarises_window_with_first_occurrences(small: Conn) -> None:
    """[0s, 7s): trades 1-5; high 12.00 first at 1s; low 9.00 first at 3s; VWAP 81.5/8."""
    (summary,) = price_range(small, at(0), at(7), ["aaausdt"])
    assert (summary.open, summary.close) == (Decimal("10.00"), Decimal("9.00"))
    assert (summary.high, summary.high_at) == (Decimal("12.00"), at(1))
    assert (summary.low, summary.low_at) == (Decimal("9.00"), at(3))
    assert (summary.trades, summary.volume, summary.vwap) == (5, Decimal("8"), Decimal("10.1875"))
    assert (summary.start, summary.end) == (at(0), at(7))


def test_price_range_end_is_exclusive_and_start_inclusive(small: Conn) -> None:
    """[1s, 7s) includes both fills at 1s and excludes trade 6 at 7s."""
    (summary,) = price_range(small, at(1), at(7), ["AAAUSDT"])
    assert summary.trades == 4
    assert (summary.open, summary.close) == (Decimal("12.00"), Decimal("9.00"))


def test_price_range_orders_fills_of_one_millisecond_by_id(small: Conn) -> None:
    """Within one millisecond, open is the lower id and close the higher."""
    (summary,) = price_range(small, at(1), at(2), ["AAAUSDT"])
    assert (summary.open, summary.close, summary.trades) == (Decimal("12.00"), Decimal("11.50"), 2)
    assert summary.high_at == summary.low_at == at(1)


def test_price_range_equal_highs_report_the_first(small: Conn) -> None:
    """The whole day: 12.00 traded at 1s and 9s; high_at is 1s."""
    (summary,) = price_range(small, T0, T0 + timedelta(days=1), ["AAAUSDT"])
    assert (summary.high_at, summary.close, summary.trades) == (at(1), Decimal("12.00"), 7)
    assert summary.vwap == Decimal("116.5") / Decimal("11")


def test_price_range_window_without_trades(small: Conn) -> None:
    """A window with no trades has no summary for that symbol."""
    assert price_range(small, at(9.001), at(60), ["AAAUSDT"]) == []
    answer = price_range(small, at(2), at(3), [])
    assert [s.symbol for s in answer] == ["TINYUSDT"]


def test_price_range_rejects_empty_window(small: Conn) -> None:
    """start must be before end."""
    with pytest.raises(UsageError, match="empty window"):
        price_range(small, at(5), at(5), ["AAAUSDT"])


def test_dust_prices_stay_exact(small: Conn) -> None:
    """0.00000001 comes back as exactly that Decimal, in every query."""
    (point,) = latest_prices(small, ["TINYUSDT"])
    (summary,) = price_range(small, at(0), at(10), ["TINYUSDT"])
    assert point.price == summary.vwap == summary.volume == Decimal("0.00000001")
    assert format(point.price, "f") == "0.00000001"


def test_readme_fixture_answers(database_url: str) -> None:
    """The expected answers table of tests/fixtures/binance/README.md."""
    rows = combined_fixture()
    load(database_url, rows)
    time_of = {(r.symbol, r.trade_id): r.timestamp for r in rows}
    first, last = min(r.timestamp for r in rows), max(r.timestamp for r in rows)
    with psycopg.connect(database_url) as conn:
        latest = {p.symbol: p for p in latest_prices(conn)}
        window = price_range(conn, first, last + timedelta(milliseconds=1))
    summary = {s.symbol: s for s in window}
    assert (latest["BTCUSDT"].price, latest["BTCUSDT"].trade_id) == (
        Decimal("73112.31000000"),
        6329162650,
    )
    assert latest["BTCUSDT"].timestamp == time_of[("BTCUSDT", 6329162650)]
    assert (latest["ETHUSDT"].price, latest["ETHUSDT"].trade_id) == (
        Decimal("1979.82000000"),
        4049338735,
    )
    btc, eth = summary["BTCUSDT"], summary["ETHUSDT"]
    assert (btc.trades, eth.trades) == (40, 30)
    assert (btc.high, btc.high_at) == (Decimal("73112.31"), time_of[("BTCUSDT", 6329162650)])
    assert (btc.low, btc.low_at) == (Decimal("73109.23"), time_of[("BTCUSDT", 6329162620)])
    assert (eth.high, eth.high_at) == (Decimal("1979.94"), time_of[("ETHUSDT", 4049338706)])
    assert (eth.low, eth.low_at) == (Decimal("1979.82"), time_of[("ETHUSDT", 4049338720)])
    assert format(btc.volume, "f") == "0.49065000"
    assert format(eth.volume, "f") == "12.19600000"
    for symbol, s in summary.items():
        mine = [r for r in rows if r.symbol == symbol]
        notional = sum((r.price * r.quantity for r in mine), Decimal(0))
        assert s.vwap == notional / s.volume
