"""Messages a newcomer meets in the first hour (#20 item 5): each says what is going on and
what to do, and none misleads (a brand-new database is not broken, a refused password is not
an unreachable server, a time after every stored trade is not silently the last trade)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from typer.testing import CliRunner

from binprice import embedded
from binprice.cli import cli
from binprice.cli.views.queries import at_notes
from binprice.db.claims import claim_symbols
from binprice.db.queries import At
from binprice.testing.exchange import TestExchange
from tests.ingest_helpers import binprice_async
from tests.trades_data import SMALL, load

runner = CliRunner()


@pytest.mark.parametrize("command", ["latest", "status"])
def test_a_brand_new_database_says_no_trades_yet_and_how_to_capture(
    empty_database_url: str, command: str
) -> None:
    """A database binprice never wrote to is not "broken": it has no trades yet, and
    `binprice ingest` both creates the schema and captures some."""
    result = runner.invoke(cli, ["--database-url", empty_database_url, command])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "has no trades yet" in line and "`binprice ingest BTCUSDT`" in line, line
    assert "no binprice schema" not in line


@pytest.fixture
def password_url(reachable_tmp: Path) -> Iterator[str]:
    """A URL with a wrong password for a role that logs in with a password, on an embedded
    server of its own whose access rules ask that role for one (the server writes its own
    pg_hba.conf: binprice's embedded server lets only its OS user in, by peer)."""
    info = embedded.ensure_server(reachable_tmp / "data")
    with psycopg.connect(info.url("postgres"), autocommit=True) as conn:
        conn.execute("CREATE ROLE newcomer LOGIN PASSWORD 'right'")
        row = conn.execute("SHOW hba_file").fetchone()
        assert row is not None
        rules = ["local all newcomer scram-sha-256", "local all all peer map=binprice"]
        copy = sql.SQL("COPY (SELECT unnest({}::text[])) TO {}").format(rules, str(row[0]))
        conn.execute(copy)
        conn.execute("SELECT pg_reload_conf()")
    yield info.url("binprice").replace("postgres@", "newcomer:wrong@")


def test_a_wrong_password_says_the_server_refused_it(password_url: str) -> None:
    """The server answered: the line says it refused the password, not "cannot reach"."""
    result = runner.invoke(cli, ["--database-url", password_url, "latest"])
    assert result.exit_code == 1
    (line,) = result.stderr.strip().splitlines()
    assert "refused the password" in line and "cannot reach" not in line, line
    assert "wrong" not in line


def test_at_a_time_in_the_future_says_so(database_url: str) -> None:
    """`at --ts` after now still answers with the last trades, and says TS is in the future."""
    load(database_url, SMALL)
    result = runner.invoke(
        cli, ["--database-url", database_url, "at", "--ts", "2999-01-01", "--json", "AAAUSDT"]
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)[0]["trade_id"] == 7
    assert "2999-01-01T00:00:00.000Z is in the future" in result.stderr


def test_at_far_from_every_stored_trade_says_how_far() -> None:
    """A nearest trade more than an hour from TS is named with its distance and side."""
    now = datetime(2026, 6, 1, tzinfo=UTC)
    ts = now - timedelta(days=1)
    trade = ts - timedelta(days=3, hours=2)
    far = At("BTCUSDT", Decimal("1.0"), trade, 7, ts, (trade - ts) // timedelta(milliseconds=1))
    near = At("ETHUSDT", Decimal("1.0"), ts, 8, ts, 0)
    assert at_notes([near], ts, now=now) == []
    (note,) = at_notes([far, near], ts, now=now)
    assert note == "note: BTCUSDT's nearest trade is 3d2h before 2026-05-31T00:00:00.000Z"
    (future,) = at_notes([far], now + timedelta(seconds=1), now=now)
    assert "is in the future" in future and len(future) <= 80


async def test_a_second_ingest_of_the_same_symbols_says_so_in_one_line(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """While another run holds BTCUSDT (its claim, as a running ingest holds it), a new
    `ingest BTCUSDT ETHUSDT` warns once, naming BTCUSDT only, and still stores every trade;
    once the other run is gone, the next run says nothing of the kind."""
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    other = await psycopg.AsyncConnection.connect(database_url, autocommit=True)
    try:
        assert await claim_symbols(other, ["BTCUSDT"]) == []
        async with TestExchange(["BTCUSDT", "ETHUSDT"], seed=3, rate=200) as ex:
            args = (
                "--database-url",
                database_url,
                "ingest",
                "BTCUSDT",
                "ETHUSDT",
                "--ws-url",
                ex.ws_url,
                "--rest-url",
                ex.rest_url,
                "--log-format",
                "json",
            )
            # The exchange trades on: each run stores 40 trades and ends.
            first = await binprice_async(env, *args, "--max-trades", "40")
            await other.close()
            second = await binprice_async(env, *args, "--max-trades", "40")
    finally:
        await other.close()
    assert first[0] == 0, first[2]
    (line,) = [json.loads(x) for x in first[2].splitlines() if '"shared"' in x]
    assert line["severity"] == "warning"
    assert line["message"].startswith(
        "another binprice ingest is already capturing BTCUSDT into this database"
    )
    assert second[0] == 0, second[2]
    assert '"shared"' not in second[2]
