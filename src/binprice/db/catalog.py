"""Which months are compressed: the catalog `compressed_months` (a few rows), read by every
question before it decides whether to read blocks at all.

Kept apart from `db.blockreads` (and the codec it imports) so that a question over row months
only — `binprice latest` on a live database — imports nothing of the compressed format.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg

from binprice.markets import Market

#: Spot's market number in `trade_blocks` and `compressed_months` (`Market.number`).
MARKET_SPOT = Market.SPOT.number

MONTHS_SQL = "SELECT month FROM compressed_months WHERE market = %s ORDER BY month"


def _next_month(month: datetime) -> datetime:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True, slots=True)
class Compressed:
    """The compressed months (their first instants, UTC), from the catalog."""

    months: tuple[datetime, ...]

    def __bool__(self) -> bool:
        return bool(self.months)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether any compressed month shares an instant with ``[start, end)``."""
        return any(month < end and _next_month(month) > start for month in self.months)


def compressed_catalog(conn: psycopg.Connection[Any], market: Market = Market.SPOT) -> Compressed:
    """Which months of `market` have blocks (a few catalog rows; no table is read)."""
    rows = conn.execute(MONTHS_SQL, (market.number,)).fetchall()
    return Compressed(tuple(row[0].astimezone(UTC) for row in rows))
