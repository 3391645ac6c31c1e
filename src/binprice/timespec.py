"""Parse and format the times and durations users type (`--ts`, `--start`, `--last`, `--within`).

Everything returned is timezone-aware UTC with millisecond precision (finer input is truncated,
as the database stores ``timestamptz(3)``). Parsing is pure: the current time is a parameter, so
tests pin it.

Timestamps accepted by :func:`parse_timestamp`:

- ISO 8601 with ``Z`` or an offset (``2026-05-28T04:13:40.983Z``, ``...+02:00``); a naive
  timestamp is UTC; a date alone (``2026-05-28``) is midnight UTC;
- epoch seconds or milliseconds, told apart by magnitude: below 10^11 it is seconds (10^11 s is
  the year 5138), from 10^11 up to 10^14 milliseconds (10^11 ms is March 1973, long before any
  exchange); a fraction is allowed on seconds (``1779941620.983``); larger numbers are refused;
- ``now``; relative to now: ``-5m``, ``5m ago``, ``+1h``.

Durations accepted by :func:`parse_duration`: whole numbers with units, largest first, each unit at
most once: ``500ms``, ``30s``, ``1m``, ``1h30m``, ``2d``, ``1w``; at most ``MAX_DURATION`` (5200w,
about a century: more than all of any exchange's history, and far from the datetime range's ends,
so that no command computing ``now - duration`` can overflow).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from binprice.errors import UsageError

__all__ = [
    "DURATION_FORMS",
    "MAX_DURATION",
    "TIMESTAMP_FORMS",
    "format_duration",
    "format_timestamp",
    "parse_duration",
    "parse_timestamp",
    "parse_window",
    "truncate_to_ms",
]

TIMESTAMP_FORMS = (
    "ISO 8601 (2026-05-28T04:13:40.983Z, an offset, or naive = UTC), a date (2026-05-28), "
    "epoch seconds or milliseconds, 'now', or relative ('-5m', '5m ago')"
)
DURATION_FORMS = "a number and unit, largest first: 500ms, 30s, 1m, 1h30m, 2d, 1w"

#: Epoch values below this are seconds, at or above it milliseconds (10^11 s ≈ year 5138,
#: 10^11 ms ≈ 1973-03-03).
EPOCH_MS_THRESHOLD = 10**11
#: Epoch values at or above this (10^14 ms ≈ year 5138) are refused: they are micro- or
#: nanoseconds, and guessing wrong would silently answer about another century.
EPOCH_MAX = 10**14

#: The longest duration accepted (about 100 years): every window, cut or offset a command takes
#: is then far inside the years datetime can hold (1 to 9999), and still reaches before 1970.
MAX_DURATION = timedelta(weeks=5200)
_MAX_DURATION_TEXT = "5200w (about 100 years)"

_UNIT_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}
_UNIT_ORDER = ("w", "d", "h", "m", "s", "ms")
# "ms" must be tried before "m" so that "500ms" is not read as 500 minutes followed by "s".
_DURATION_PART = re.compile(r"(\d+)(ms|w|d|h|m|s)")
_EPOCH = re.compile(r"\d+(?:\.\d+)?")
_RELATIVE_SIGNED = re.compile(r"([+-])\s*(\S.*)")
_RELATIVE_AGO = re.compile(r"(.+?)\s+ago")
_EPOCH_START = datetime(1970, 1, 1, tzinfo=UTC)


def truncate_to_ms(value: datetime) -> datetime:
    """Drop sub-millisecond digits: the database keeps milliseconds, so answers are comparable."""
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def parse_duration(text: str) -> timedelta:
    """Parse a duration such as ``1h30m`` or ``500ms``; raise :class:`UsageError` otherwise, also
    for one longer than ``MAX_DURATION``."""
    total_ms = _duration_ms(text)
    if total_ms is None:
        raise UsageError(f"invalid duration {text!r}: expected {DURATION_FORMS}")
    if total_ms > MAX_DURATION // timedelta(milliseconds=1):
        raise UsageError(f"duration {text.strip()!r} is out of range: at most {_MAX_DURATION_TEXT}")
    return timedelta(milliseconds=total_ms)


def _duration_ms(text: str) -> int | None:
    """The milliseconds of a well-formed duration, however long; None if it is not one."""
    compact = text.strip()
    total_ms = 0
    position = 0
    last_rank = -1
    for match in _DURATION_PART.finditer(compact):
        rank = _UNIT_ORDER.index(match.group(2))
        if match.start() != position or rank <= last_rank:
            break
        total_ms += int(match.group(1)) * _UNIT_MS[match.group(2)]
        position, last_rank = match.end(), rank
    else:
        if position == len(compact) and position > 0:
            return total_ms
    return None


def parse_timestamp(text: str, *, now: datetime | None = None) -> datetime:
    """Parse a timestamp (see the module docstring) into an aware UTC datetime, millisecond precise.

    ``now`` is the reference for ``now`` and relative forms; it defaults to the current time.
    """
    stripped = text.strip()
    lowered = stripped.lower()
    try:
        if lowered == "now":
            return truncate_to_ms(_reference(now))
        if signed := _RELATIVE_SIGNED.fullmatch(lowered):
            offset = _relative_offset(signed.group(2), text)
            return truncate_to_ms(_reference(now) + (offset if signed.group(1) == "+" else -offset))
        if ago := _RELATIVE_AGO.fullmatch(lowered):
            return truncate_to_ms(_reference(now) - _relative_offset(ago.group(1), text))
        if _EPOCH.fullmatch(stripped):
            return _parse_epoch(stripped, text)
        return _parse_iso(stripped, text)
    except OverflowError:
        raise UsageError(f"timestamp {text!r} is out of range") from None


def parse_window(
    *,
    last: str | None = None,
    start: str | None = None,
    end: str | None = None,
    now: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The ``[start, end)`` of ``range``: ``--last DUR`` or ``--start TS``, each with optional
    ``--end TS`` (default now). Exactly one of ``last`` and ``start`` must be given."""
    if (last is None) == (start is None):
        raise UsageError("give exactly one of --last DUR or --start TS")
    reference = _reference(now)
    window_end = parse_timestamp(end if end is not None else "now", now=reference)
    if last is not None:
        duration = parse_duration(last)
        try:
            return window_end - duration, window_end
        except OverflowError:
            raise UsageError(
                f"--last {last.strip()} before {format_timestamp(window_end)} starts before year 1"
            ) from None
    return parse_timestamp(start or "", now=reference), window_end


def format_timestamp(value: datetime) -> str:
    """Format as ISO 8601 UTC with milliseconds and ``Z``: ``2026-05-28T04:13:40.983Z``."""
    naive_utc = value.astimezone(UTC).replace(tzinfo=None)
    return naive_utc.isoformat(timespec="milliseconds") + "Z"


def format_duration(value: timedelta) -> str:
    """Format a duration in the form :func:`parse_duration` reads (``1h30m``; ``0s`` for zero).

    Sub-millisecond parts are dropped; a negative duration gets a leading ``-``.
    """
    total_ms = value // timedelta(milliseconds=1)
    sign = "-" if total_ms < 0 else ""
    remaining = abs(total_ms)
    parts: list[str] = []
    for unit in _UNIT_ORDER:
        count, remaining = divmod(remaining, _UNIT_MS[unit])
        if count:
            parts.append(f"{count}{unit}")
    return sign + ("".join(parts) or "0s")


def _reference(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


def _relative_offset(duration_text: str, original: str) -> timedelta:
    if _duration_ms(duration_text) is None:
        raise _bad_timestamp(original)
    try:
        return parse_duration(duration_text)
    except UsageError as exc:
        raise UsageError(f"timestamp {original.strip()!r}: {exc}") from None


def _parse_epoch(digits: str, original: str) -> datetime:
    try:
        number = Decimal(digits)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        raise _bad_timestamp(original) from None
    if number >= EPOCH_MAX:
        raise UsageError(f"epoch {original.strip()!r} is too large: give seconds or milliseconds")
    if number < EPOCH_MS_THRESHOLD:
        number *= 1000
    elif "." in digits:
        raise UsageError(f"epoch milliseconds {original.strip()!r} cannot have a fraction")
    return _EPOCH_START + timedelta(milliseconds=int(number))


def _parse_iso(stripped: str, original: str) -> datetime:
    # fromisoformat wants upper-case "T" and "Z"; nothing else in an ISO string has letters.
    try:
        parsed = datetime.fromisoformat(stripped.upper())
    except ValueError:
        raise _bad_timestamp(original) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return truncate_to_ms(parsed.astimezone(UTC))


def _bad_timestamp(original: str) -> UsageError:
    return UsageError(f"invalid timestamp {original!r}: expected {TIMESTAMP_FORMS}")
