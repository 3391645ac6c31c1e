"""Kline intervals: Binance's names, UTC alignment, close times and the chart's automatic choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from binprice.db.candles import INTERVALS, choose_interval, parse_interval
from binprice.errors import UsageError


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type]


def t(text: str) -> datetime:
    """An ISO time in UTC, to keep the table readable."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# (interval, a moment, the open time of its candle, that candle's close time)
ALIGNMENT = [
    ("1m", t("2026-05-28 04:13:40.983"), t("2026-05-28 04:13"), t("2026-05-28 04:13:59.999")),
    ("3m", t("2026-05-28 04:13:40"), t("2026-05-28 04:12"), t("2026-05-28 04:14:59.999")),
    ("5m", t("2026-05-28 04:13"), t("2026-05-28 04:10"), t("2026-05-28 04:14:59.999")),
    ("15m", t("2026-05-28 04:14:59.999"), t("2026-05-28 04:00"), t("2026-05-28 04:14:59.999")),
    ("30m", t("2026-05-28 04:30"), t("2026-05-28 04:30"), t("2026-05-28 04:59:59.999")),
    ("1h", t("2026-05-28 04:13"), t("2026-05-28 04:00"), t("2026-05-28 04:59:59.999")),
    ("2h", t("2026-05-28 05:13"), t("2026-05-28 04:00"), t("2026-05-28 05:59:59.999")),
    ("4h", t("2026-05-28 03:59"), t("2026-05-28 00:00"), t("2026-05-28 03:59:59.999")),
    ("6h", t("2026-05-28 23:00"), t("2026-05-28 18:00"), t("2026-05-28 23:59:59.999")),
    ("8h", t("2026-05-28 08:00"), t("2026-05-28 08:00"), t("2026-05-28 15:59:59.999")),
    ("12h", t("2026-05-28 11:59"), t("2026-05-28 00:00"), t("2026-05-28 11:59:59.999")),
    ("1d", t("2026-05-28 23:59:59.999"), t("2026-05-28"), t("2026-05-28 23:59:59.999")),
    # Epoch-aligned: 2026-01-01 is day 20454 since 1970-01-01; 20454 = 3 * 6818, so it opens one.
    ("3d", t("2026-01-01 12:00"), t("2026-01-01"), t("2026-01-03 23:59:59.999")),
    ("3d", t("2025-12-31 23:59"), t("2025-12-29"), t("2025-12-31 23:59:59.999")),
    # Weeks open on Monday 00:00 UTC: 2026-05-28 is a Thursday, 2026-05-25 the Monday before.
    ("1w", t("2026-05-28 04:00"), t("2026-05-25"), t("2026-05-31 23:59:59.999")),
    ("1w", t("2026-05-25"), t("2026-05-25"), t("2026-05-31 23:59:59.999")),
    ("1w", t("2026-01-01"), t("2025-12-29"), t("2026-01-04 23:59:59.999")),
    ("1M", t("2026-02-14 09:00"), t("2026-02-01"), t("2026-02-28 23:59:59.999")),
    ("1M", t("2024-02-29 23:59"), t("2024-02-01"), t("2024-02-29 23:59:59.999")),
    ("1M", t("2025-12-31 23:59"), t("2025-12-01"), t("2025-12-31 23:59:59.999")),
]


@pytest.mark.parametrize(
    ("name", "moment", "open_time", "close_time"),
    ALIGNMENT,
    ids=[f"{a[0]} {a[1]:%Y-%m-%d %H:%M}" for a in ALIGNMENT],
)
def test_interval_alignment_and_close_time(
    name: str, moment: datetime, open_time: datetime, close_time: datetime
) -> None:
    """Each interval floors a moment to Binance's open time; close = next open - 1 ms."""
    interval = parse_interval(name)
    assert interval.floor(moment) == open_time
    assert interval.close_time(open_time) == close_time
    assert interval.floor(close_time) == open_time
    assert interval.floor(close_time + timedelta(milliseconds=1)) == interval.following(open_time)


def test_naive_moments_are_utc() -> None:
    """A naive datetime is taken as UTC."""
    assert parse_interval("1h").floor(datetime(2026, 5, 28, 4, 13)) == utc(2026, 5, 28, 4)


def test_every_binance_interval_is_known_in_order() -> None:
    """The names are Binance's, finest first (the order choose_interval walks)."""
    assert list(INTERVALS) == [
        *("1m", "3m", "5m", "15m", "30m"),
        *("1h", "2h", "4h", "6h", "8h", "12h"),
        *("1d", "3d", "1w", "1M"),
    ]


@pytest.mark.parametrize("name", ["1s", "2d", "1W", "m", "", "1mo", "60m"])
def test_unknown_interval_is_a_usage_error(name: str) -> None:
    """Only Binance's names are accepted (case matters: 1M is a month, 1W is not a name)."""
    with pytest.raises(UsageError, match="invalid interval"):
        parse_interval(name)


@pytest.mark.parametrize(
    ("span", "max_candles", "expected"),
    [
        (timedelta(hours=1), 60, "1m"),
        (timedelta(hours=1), 59, "3m"),
        (timedelta(days=1), 60, "30m"),
        (timedelta(days=30), 60, "12h"),
        (timedelta(days=365), 60, "1w"),
        (timedelta(days=3650), 60, "1M"),
        (timedelta(days=36500), 60, "1M"),
    ],
)
def test_choose_interval_is_the_finest_that_fits(
    span: timedelta, max_candles: int, expected: str
) -> None:
    """The chart's automatic interval: the finest with at most max_candles candles."""
    start = utc(2026, 1, 1)
    assert choose_interval(start, start + span, max_candles).name == expected


@pytest.mark.parametrize(
    ("name", "moment", "count", "first"),
    [
        ("1m", "2026-05-28T04:13:41Z", 60, "2026-05-28T03:14:00Z"),
        ("1h", "2026-05-28T04:13:41Z", 1, "2026-05-28T04:00:00Z"),
        ("1w", "2026-05-28T04:13:41Z", 2, "2026-05-18T00:00:00Z"),
        ("1M", "2026-02-10T00:00:00Z", 3, "2025-12-01T00:00:00Z"),
        ("1M", "2026-01-31T23:59:59Z", 13, "2025-01-01T00:00:00Z"),
    ],
)
def test_opens_before_is_where_the_last_count_candles_begin(
    name: str, moment: str, count: int, first: str
) -> None:
    """The default window of `candles`: `count` candles, the last one holding `moment`."""
    start = INTERVALS[name].opens_before(datetime.fromisoformat(moment), count)
    assert start == datetime.fromisoformat(first)
