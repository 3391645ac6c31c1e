"""`gaps --verify` proves no trade id is stored twice (#20 item 3): since monthly partitioning
the primary key `(symbol, trade_id, timestamp)` lets a second row with a known id in at another
time, so the check finds it (exit 1, in --json too) by reading only the id ranges the per-minute
rollup flags."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import psycopg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from binprice.cli import cli
from binprice.db.duplicates import find_duplicates
from binprice.db.gaps import verify_gaps
from tests.trades_data import Row, load

runner = CliRunner()

LIVE = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
ARCHIVE = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
FAR = datetime(9999, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _trades(ids: range, start: datetime, price: str, per_second: int = 10) -> list[Row]:
    return [
        Row("BTCUSDT", i, Decimal(price), Decimal("1"), start + timedelta(seconds=n // per_second))
        for n, i in enumerate(ids)
    ]


def test_an_archive_of_another_market_beside_live_ids_fails_verify_naming_the_copies(
    database_url: str,
) -> None:
    """Live ids 1..5000 and an import of ids 4001..7504 a year earlier: 1,000 ids are stored
    twice. Holes say nothing (the ids are all there), the duplicate check exits 1 and names
    them, with each copy's time and price, in text and in --json."""
    load(database_url, _trades(range(1, 5001), LIVE, "100.00"))
    ok = runner.invoke(cli, ["--database-url", database_url, "gaps", "--verify"])
    assert ok.exit_code == 0, ok.stdout
    load(database_url, _trades(range(4001, 7505), ARCHIVE, "7.25"))
    text = runner.invoke(cli, ["--database-url", database_url, "gaps", "--verify"])
    assert text.exit_code == 1
    flowing = " ".join(text.stdout.split())  # the lines are folded at 80 columns
    assert max(len(line) for line in text.stdout.splitlines()) <= 80
    assert "BTCUSDT: NOT OK" in flowing and "1,000 ids stored twice" in flowing
    assert (
        "stored twice: BTCUSDT id 4001: 2025-03-01T08:00:00.000Z at 7.25, "
        "2026-01-05T12:06:40.000Z at 100.00"
    ) in flowing
    done = runner.invoke(cli, ["--database-url", database_url, "gaps", "--verify", "--json"])
    assert done.exit_code == 1
    report = json.loads(done.stdout)
    (check,) = report["symbols"]
    assert report["ok"] is False and check["duplicate_ids"] == 1000
    assert check["duplicates"][0] == {
        "trade_id": 4001,
        "copies": [
            {"timestamp": "2025-03-01T08:00:00.000Z", "price": "7.25"},
            {"timestamp": "2026-01-05T12:06:40.000Z", "price": "100.00"},
        ],
    }


def test_a_copy_in_the_same_minute_is_found_too(database_url: str) -> None:
    """A second row of one id a few seconds later, in the same minute (the minute then holds
    more rows than its id span)."""
    rows = _trades(range(1, 31), LIVE, "1.0")
    load(
        database_url,
        [*rows, Row("BTCUSDT", 10, Decimal("2.0"), Decimal("1"), LIVE + timedelta(seconds=9))],
    )
    with psycopg.connect(database_url) as conn:
        (check,) = verify_gaps(conn).symbols
    assert check.duplicates is not None and check.duplicate_ids == 1
    assert [d.trade_id for d in check.duplicates.listed] == [10]
    assert not check.ok and not check.holes


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    blocks=st.lists(
        st.tuples(st.integers(0, 300), st.integers(1, 40), st.integers(0, 600)),
        min_size=1,
        max_size=8,
    )
)
def test_every_id_stored_in_two_minutes_is_found(
    database_url: str, blocks: list[tuple[int, int, int]]
) -> None:
    """Blocks of consecutive ids, each at its own minute, overlapping at random: the ids the
    check reports are exactly those stored more than once (brute force by GROUP BY)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE trades")  # its trigger empties trade_minutes
    rows: dict[tuple[int, datetime], Row] = {}
    for first, size, minute in blocks:
        at = LIVE + timedelta(minutes=minute)
        for i in range(first, first + size):
            rows[(i, at)] = Row("BTCUSDT", i, Decimal("1"), Decimal("1"), at)
    load(database_url, rows.values())
    with psycopg.connect(database_url, autocommit=True) as conn:
        truth = [
            r[0]
            for r in conn.execute(
                "SELECT trade_id FROM trades GROUP BY trade_id HAVING count(*) > 1 ORDER BY 1"
            )
        ]
        found = find_duplicates(conn, ["BTCUSDT"], [EPOCH], FAR).get("BTCUSDT")
    assert (found.count if found else 0) == len(truth)
    assert ([d.trade_id for d in found.listed] if found else []) == truth[:100]
