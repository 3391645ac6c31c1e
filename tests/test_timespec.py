"""Time and duration parsing: table tests and round-trip properties."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from binprice.errors import UsageError
from binprice.timespec import (
    MAX_DURATION,
    format_duration,
    format_timestamp,
    parse_duration,
    parse_timestamp,
    parse_window,
)

NOW = datetime(2026, 5, 28, 4, 13, 40, 983_456, tzinfo=UTC)
NOW_MS = datetime(2026, 5, 28, 4, 13, 40, 983_000, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


TIMESTAMPS = [
    ("2026-05-28T04:13:40.983Z", utc(2026, 5, 28, 4, 13, 40, 983_000)),
    ("2026-05-28t04:13:40.983z", utc(2026, 5, 28, 4, 13, 40, 983_000)),
    ("2026-05-28T06:13:40.983+02:00", utc(2026, 5, 28, 4, 13, 40, 983_000)),
    ("2026-05-27T23:13:40-05:00", utc(2026, 5, 28, 4, 13, 40)),
    ("2026-05-28T04:13:40.983", utc(2026, 5, 28, 4, 13, 40, 983_000)),
    ("2026-05-28 04:13:40", utc(2026, 5, 28, 4, 13, 40)),
    ("2026-05-28T04:13:40.983999Z", utc(2026, 5, 28, 4, 13, 40, 983_000)),
    ("20260528T041340Z", utc(2026, 5, 28, 4, 13, 40)),
    ("2026-05-28", utc(2026, 5, 28)),
    ("  2026-05-28  ", utc(2026, 5, 28)),
    ("1779941620", utc(2026, 5, 28, 4, 13, 40)),
    ("1779941620.983", utc(2026, 5, 28, 4, 13, 40, 983_000)),
    ("1779941620983", utc(2026, 5, 28, 4, 13, 40, 983_000)),
    ("0", utc(1970, 1, 1)),
    ("99999999999", utc(5138, 11, 16, 9, 46, 39)),
    ("100000000000", utc(1973, 3, 3, 9, 46, 40)),
    ("now", NOW_MS),
    ("NOW", NOW_MS),
    ("-5m", NOW_MS - timedelta(minutes=5)),
    ("- 5m", NOW_MS - timedelta(minutes=5)),
    ("+1h", NOW_MS + timedelta(hours=1)),
    ("5m ago", NOW_MS - timedelta(minutes=5)),
    ("1h30m ago", NOW_MS - timedelta(hours=1, minutes=30)),
    ("-500ms", NOW_MS - timedelta(milliseconds=500)),
]


@pytest.mark.parametrize(("text", "expected"), TIMESTAMPS, ids=[t for t, _ in TIMESTAMPS])
def test_parse_timestamp_accepts_documented_forms(text: str, expected: datetime) -> None:
    """Each documented timestamp form parses to the expected UTC instant."""
    parsed = parse_timestamp(text, now=NOW)
    assert parsed == expected
    assert parsed.tzinfo is UTC


BAD_TIMESTAMPS = [
    "",
    "yesterday",
    "2026-13-01",
    "2026-05-28T25:00",
    "-5",
    "5 ago",
    "5m  from now",
    "-5x",
    "100000000000000",
    "1779941620983.5",
    "1e9",
    "+02:00",
]


@pytest.mark.parametrize("text", BAD_TIMESTAMPS, ids=[repr(t) for t in BAD_TIMESTAMPS])
def test_parse_timestamp_rejects_with_one_line_usage_error(text: str) -> None:
    """Unparseable timestamps raise a one-line UsageError naming the input."""
    with pytest.raises(UsageError) as info:
        parse_timestamp(text, now=NOW)
    message = str(info.value)
    assert "\n" not in message
    assert repr(text.strip()) in message or repr(text) in message
    assert isinstance(info.value, UsageError)


def test_parse_timestamp_out_of_range_is_a_usage_error() -> None:
    """A relative time before year 1 is reported, not crashed on."""
    with pytest.raises(UsageError, match="out of range"):
        parse_timestamp("-1000000w", now=NOW)


def test_parse_timestamp_without_now_uses_the_clock() -> None:
    """'now' defaults to the current time."""
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    assert before <= parse_timestamp("now") <= datetime.now(UTC)


def test_parse_timestamp_has_no_dst_surprises() -> None:
    """Naive input is UTC whatever the local zone: no DST gap or fold exists."""
    # 2026-03-29 01:30 does not exist in Europe/* local time; in UTC it is an ordinary instant.
    assert parse_timestamp("2026-03-29T01:30:00") == utc(2026, 3, 29, 1, 30)
    assert parse_timestamp("2026-10-25T01:30:00") == utc(2026, 10, 25, 1, 30)
    assert parse_timestamp("2026-03-29T03:30:00+02:00") - parse_timestamp(
        "2026-03-29T00:30:00Z"
    ) == timedelta(hours=1)


DURATIONS = [
    ("500ms", timedelta(milliseconds=500)),
    ("30s", timedelta(seconds=30)),
    ("1m", timedelta(minutes=1)),
    ("1h30m", timedelta(hours=1, minutes=30)),
    ("2d", timedelta(days=2)),
    ("1w", timedelta(weeks=1)),
    ("0s", timedelta(0)),
    ("1w2d3h4m5s6ms", timedelta(weeks=1, days=2, hours=3, minutes=4, seconds=5, milliseconds=6)),
    ("90m", timedelta(minutes=90)),
    (" 5m ", timedelta(minutes=5)),
    ("5200w", MAX_DURATION),
    ("5199w6d23h59m59s999ms", MAX_DURATION - timedelta(milliseconds=1)),
]


@pytest.mark.parametrize(("text", "expected"), DURATIONS, ids=[t for t, _ in DURATIONS])
def test_parse_duration_accepts_documented_forms(text: str, expected: timedelta) -> None:
    """Each documented duration form parses to the expected timedelta."""
    assert parse_duration(text) == expected


BAD_DURATIONS = ["", "5", "m", "1.5h", "-5m", "30m1h", "1m1m", "5 m", "1M", "5y", "1h 30m x"]


@pytest.mark.parametrize("text", BAD_DURATIONS, ids=[repr(t) for t in BAD_DURATIONS])
def test_parse_duration_rejects_with_one_line_usage_error(text: str) -> None:
    """Bad durations raise a one-line UsageError listing the accepted forms."""
    with pytest.raises(UsageError, match=r"invalid duration .*1h30m") as info:
        parse_duration(text)
    assert "\n" not in str(info.value)


TOO_LONG = ["5200w1ms", "5201w", "110000w", "99999999w", "999999999999d", "9" * 40 + "ms"]


@pytest.mark.parametrize("text", TOO_LONG)
def test_parse_duration_refuses_more_than_a_century_saying_the_limit(text: str) -> None:
    """A duration past MAX_DURATION (even one past what timedelta holds) is one UsageError that
    names the input and the limit, never an OverflowError."""
    with pytest.raises(UsageError) as info:
        parse_duration(text)
    assert str(info.value) == f"duration {text!r} is out of range: at most 5200w (about 100 years)"


@pytest.mark.parametrize("text", ["-110000w", "110000w ago", "+99999999w"])
def test_relative_timestamps_beyond_the_limit_say_so(text: str) -> None:
    """`--ts -110000w` is refused for its duration (not called unparseable)."""
    with pytest.raises(UsageError, match=r"out of range: at most 5200w") as info:
        parse_timestamp(text, now=NOW)
    assert repr(text) in str(info.value)


def test_parse_window_reaching_before_year_one_is_a_usage_error() -> None:
    """--last back from an --end near year 1 says the window starts before year 1."""
    assert parse_window(last="5200w", now=NOW)[0] == NOW_MS - MAX_DURATION
    with pytest.raises(UsageError, match="starts before year 1"):
        parse_window(last="1w", end="0001-01-02", now=NOW)


def test_format_timestamp_is_iso_utc_with_milliseconds_and_z() -> None:
    """Output timestamps always carry three fraction digits and Z."""
    offset = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 5, 28, 6, 0, tzinfo=offset)) == (
        "2026-05-28T04:00:00.000Z"
    )


def test_format_duration_examples() -> None:
    """Durations format in the parseable compact form."""
    assert format_duration(timedelta(hours=1, minutes=30)) == "1h30m"
    assert format_duration(timedelta(0)) == "0s"
    assert format_duration(timedelta(milliseconds=-1500)) == "-1s500ms"


ms_instants = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=d.microsecond // 1000 * 1000))
ms_durations = st.integers(min_value=0, max_value=10**12).map(lambda n: timedelta(milliseconds=n))
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda m: timezone(timedelta(minutes=m))
)


@given(ms_instants)
def test_timestamp_round_trips_through_format(instant: datetime) -> None:
    """parse(format(t)) == t for every millisecond instant."""
    assert parse_timestamp(format_timestamp(instant)) == instant


@given(ms_instants, offsets)
def test_timestamp_with_any_offset_is_the_same_instant(instant: datetime, tz: timezone) -> None:
    """Writing an instant in any UTC offset parses back to the same instant."""
    local = instant.astimezone(tz)
    assert parse_timestamp(local.isoformat()) == instant


@given(
    st.integers(min_value=10**11, max_value=10**14 - 1),
)
def test_epoch_milliseconds_round_trip(millis: int) -> None:
    """Large epoch numbers are milliseconds and round-trip exactly."""
    parsed = parse_timestamp(str(millis))
    assert (parsed - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1) == millis


@given(ms_durations)
def test_duration_round_trips_through_format(duration: timedelta) -> None:
    """parse(format(d)) == d for every non-negative millisecond duration."""
    assert parse_duration(format_duration(duration)) == duration


@given(ms_durations.filter(lambda d: d < timedelta(days=365 * 1000)))
def test_relative_forms_agree(duration: timedelta) -> None:
    """'-D' and 'D ago' are both now minus D."""
    text = format_duration(duration)
    assert parse_timestamp(f"-{text}", now=NOW) == NOW_MS - duration
    assert parse_timestamp(f"{text} ago", now=NOW) == NOW_MS - duration


@given(st.datetimes(timezones=st.just(UTC)))
def test_parsed_timestamps_are_millisecond_precise(instant: datetime) -> None:
    """Sub-millisecond input is truncated, never rounded up into the next millisecond."""
    parsed = parse_timestamp(instant.isoformat())
    assert parsed.microsecond % 1000 == 0
    assert timedelta(0) <= instant - parsed < timedelta(milliseconds=1)
