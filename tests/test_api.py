"""The public Python API: `binprice.connect()` against a real table, answers checked in SQL."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

import binprice
from tests.trades_data import SMALL, T0, at, load


@pytest.fixture
def store(database_url: str) -> binprice.Store:
    load(database_url, SMALL)
    with binprice.connect(database_url) as handle:
        yield handle  # type: ignore[misc]


def test_public_names_are_listed_and_importable() -> None:
    """`__all__` is the map: every name resolves, and `import binprice` imports no driver."""
    for name in binprice.__all__:
        assert getattr(binprice, name) is not None
    code = (
        "import sys, binprice; print(sorted(m for m in ('psycopg', 'typer') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_latest_at_and_range_equal_the_answers_computed_in_sql(
    store: binprice.Store, database_url: str
) -> None:
    """Latest is the highest id; at picks the nearest; range sums the window; all exact."""
    with psycopg.connect(database_url) as conn:
        top = conn.execute(
            "SELECT price, timestamp, trade_id FROM trades WHERE symbol = 'AAAUSDT' "
            "ORDER BY trade_id DESC LIMIT 1"
        ).fetchone()
        totals = conn.execute(
            "SELECT count(*), sum(quantity), max(price), min(price) FROM trades "
            "WHERE symbol = 'AAAUSDT' AND timestamp >= %s AND timestamp < %s",
            (at(0), at(7)),
        ).fetchone()
    assert top is not None and totals is not None
    (latest,) = store.latest("aaausdt")
    assert (latest.price, latest.timestamp, latest.trade_id) == top
    assert latest.timestamp.tzinfo == UTC
    (nearest,) = store.at(at(2.4), ["AAAUSDT"])
    assert (nearest.trade_id, nearest.offset_ms) == (4, 600)
    (summary,) = store.range(at(0), at(7), "AAAUSDT")
    assert (summary.trades, summary.volume, summary.high, summary.low) == totals
    assert isinstance(summary.vwap, Decimal)


def test_naive_datetimes_mean_utc_and_strings_are_read_as_on_the_command_line(
    store: binprice.Store,
) -> None:
    """A naive datetime is UTC (as the CLI's naive --ts); ISO strings and epoch ms work too."""
    naive = (T0 + timedelta(seconds=2.4)).replace(tzinfo=None)
    aware = T0 + timedelta(seconds=2.4)
    assert store.at(naive, "AAAUSDT") == store.at(aware, "AAAUSDT")
    epoch_ms = str(int(aware.timestamp() * 1000))
    assert store.at(epoch_ms, "AAAUSDT") == store.at("2026-01-01T00:00:02.400Z", "AAAUSDT")
    assert store.range(naive - timedelta(seconds=2.4), naive, "AAAUSDT")[0].trades == 3


def test_an_empty_answer_is_an_empty_list(store: binprice.Store) -> None:
    """No trades in the window, an unknown symbol, as-of before the first trade: []."""
    assert store.range(at(100), at(200), "AAAUSDT") == []
    assert store.latest("NOPEUSDT") == []
    assert store.at(at(-1), "AAAUSDT", before=True) == []
    assert list(store.trades("AAAUSDT", at(100), at(200))) == []


def test_trades_stream_in_order_and_convert_to_exact_frames(store: binprice.Store) -> None:
    """Every trade of the window in time order; pandas and polars keep the decimals exact."""
    trades = store.trades("AAAUSDT", at(0), at(10))
    got = list(trades)
    assert [t.trade_id for t in got] == [1, 2, 3, 4, 5, 6, 7]
    assert got[0] == binprice.Trade("AAAUSDT", 1, Decimal("10.00"), Decimal("1"), at(0), False)
    frame = trades.to_pandas()
    assert list(frame["price"]) == [t.price for t in got]
    assert str(frame["price"].dtype).startswith("decimal128")
    polars_frame = store.trades("TINYUSDT", at(0), at(10)).to_polars()
    assert polars_frame["price"].to_list() == [Decimal("0.00000001")]
    assert str(polars_frame.schema["price"]).startswith("Decimal")


def test_reads_on_a_database_without_the_schema_say_what_to_do(empty_database_url: str) -> None:
    """A database binprice never migrated: one SchemaOutdatedError; `upgrade()` fixes it."""
    with binprice.connect(empty_database_url) as store:
        with pytest.raises(binprice.SchemaOutdatedError, match="binprice db upgrade"):
            store.latest()
        assert store.upgrade() == store.revision() is not None
        assert store.latest() == []


def test_an_unreachable_database_is_one_error_of_the_tree() -> None:
    """Errors come from one documented tree; no driver exception leaks."""
    store = binprice.connect("postgresql://nobody@127.0.0.1:1/none")
    with store, pytest.raises(binprice.DatabaseUnavailableError, match=r"127\.0\.0\.1:1"):
        store.latest()


def test_a_users_script_type_checks_against_the_api() -> None:
    """mypy --strict accepts a typical script: the API's types are public and precise."""
    example = Path(__file__).parent / "api" / "typed_example.py"
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(example)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ingest_from_python_migrates_and_stores_what_the_exchange_produced(
    empty_database_url: str, tmp_path: Path
) -> None:
    """`store.ingest(...)` does what the CLI does: migrates to head, spools in the data
    directory, stores every trade, returns the summary."""
    import asyncio
    import threading

    from binprice.testing.exchange import TestExchange

    ready = threading.Event()
    done = threading.Event()
    urls: dict[str, str] = {}

    async def serve() -> None:
        async with TestExchange(["BTCUSDT"], seed=4, rate=None, max_trades=500) as ex:
            urls.update(ws=ex.ws_url, rest=ex.rest_url)
            ready.set()
            await asyncio.to_thread(done.wait)

    server = threading.Thread(target=asyncio.run, args=(serve(),))
    server.start()
    try:
        assert ready.wait(30)
        with binprice.connect(empty_database_url, data_dir=tmp_path) as store:
            summary = store.ingest(
                "BTCUSDT", ws_url=urls["ws"], rest_url=urls["rest"], max_trades=500
            )
            assert summary.stored == 500
            assert len(list(store.trades("BTCUSDT", "2000-01-01"))) == 500
    finally:
        done.set()
        server.join()
    assert (tmp_path / "spool").is_dir()


def test_install_hint_names_pipx_inject_inside_a_pipx_venv(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside a pipx venv the advice is `pipx inject`; elsewhere this interpreter's pip."""
    from binprice.errors import MissingExtraError, install_hint

    monkeypatch.setattr(sys, "prefix", "/home/ann/.local/share/pipx/venvs/binprice")
    assert install_hint(("pandas", "pyarrow")) == "pipx inject binprice pandas pyarrow"
    error = MissingExtraError("to_pandas()", ("pandas", "pyarrow"))
    assert str(error) == "to_pandas() needs pandas and pyarrow: pipx inject binprice pandas pyarrow"
    monkeypatch.setattr(sys, "prefix", "/srv/venv")
    assert install_hint(("polars",)) == f"{sys.executable} -m pip install polars"


def test_to_pandas_without_pandas_says_what_to_install(
    store: binprice.Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`.to_pandas()` with pandas missing raises the one error naming what to add."""
    monkeypatch.setitem(sys.modules, "pandas", None)
    trades = store.trades("BTCUSDT", start="2025-01-01", end="2025-01-02")
    with pytest.raises(binprice.ExportError, match=r"to_pandas\(\) needs pandas: .* pandas$"):
        trades.to_pandas()
