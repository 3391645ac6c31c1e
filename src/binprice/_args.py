"""What `Store`'s methods take, made exact: times, durations and symbols as a caller may give them.

Light on purpose (the query commands' start-up imports it): each parser is imported when used.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from binprice.markets import Market, parse_market

#: A moment: an aware datetime, a naive one (UTC), or what the command line takes
#: (`"5m ago"`, ISO 8601, epoch seconds or ms).
When = datetime | str
#: A length of time: a timedelta, seconds, or the command line's `500ms`, `1h30m`.
Duration = timedelta | str | float
#: One symbol, several in a string, any iterable of them; None for "every one".
Symbols = str | Iterable[str] | None
#: A market as the API takes it: `Market.USDM` or its name, `"usdm"`.
MarketArg = Market | str


def as_time(value: When, *, now: datetime | None = None) -> datetime:
    """An aware UTC datetime from what a caller may pass: naive datetimes are UTC."""
    from binprice.timespec import parse_timestamp, truncate_to_ms

    if isinstance(value, str):
        return parse_timestamp(value, now=now)
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return truncate_to_ms(moment.astimezone(UTC))


def as_time_or_none(value: When | None) -> datetime | None:
    """`as_time`, None kept (a bound not given)."""
    return None if value is None else as_time(value)


def as_duration(value: Duration) -> timedelta:
    """A timedelta from a timedelta, seconds, or the CLI's durations (`500ms`, `1h30m`)."""
    from binprice.timespec import parse_duration

    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        return parse_duration(value)
    return timedelta(seconds=value)


def market_of(value: MarketArg) -> Market:
    """`"usdm"` or `Market.USDM` → `Market.USDM`; ConfigError names the choices otherwise."""
    return parse_market(value)


def symbols_of(value: Symbols) -> list[str]:
    """`"BTCUSDT"`, `"btcusdt ethusdt"` or any iterable of symbols, normalised; [] for None."""
    from binprice.symbols import normalize_symbols

    if value is None:
        return []
    return list(normalize_symbols(value if isinstance(value, str) else list(value)))


def days_cut(days_before: When | Duration, now: datetime | None) -> datetime:
    """`db compress --days-before`'s cut: a time (UTC if naive), or a duration before `now`
    (default: the clock); the days before its UTC day are compressed."""
    from binprice.errors import UsageError
    from binprice.timespec import parse_duration

    moment = now or datetime.now(UTC)
    if isinstance(days_before, str):
        try:
            return moment - parse_duration(days_before)
        except UsageError:
            return as_time(days_before, now=moment)
    if isinstance(days_before, datetime):
        return as_time(days_before)
    return moment - as_duration(days_before)


def compress_cut(before: When | None, settle: Duration, now: datetime | None) -> datetime:
    """`db compress`'s cut: `settle` before `now` (default: the clock), or `before` if earlier."""
    moment = now or datetime.now(UTC)
    cut = moment - as_duration(settle)
    if before is not None:
        cut = min(cut, as_time(before, now=moment))
    return cut
