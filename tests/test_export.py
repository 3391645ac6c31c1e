"""export: every trade of the window, exactly, in each format; re-loaded or parsed back."""

from __future__ import annotations

import hashlib
import io
import json
import random
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest

from binprice.db import export as db_export
from binprice.errors import UsageError
from binprice.export import COLUMNS, decimal_types, trades, write_trades
from binprice.export_binance import write_binance_archive, write_binance_file
from tests.trades_data import Row, load

# Across Binance's switch to microsecond times (2025-01-01) and a month end.
T0 = datetime(2024, 12, 31, 22, tzinfo=UTC)
SPAN = timedelta(hours=4)
PRICES = ["70000.00", "0.00000001", "1234.56780000", "12", "99999999.99999999", "0.5"]
SYMBOLS = ["BTCUSDT", "ETHUSDT"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ALL = (T0 - timedelta(days=1), T0 + SPAN + timedelta(days=1))


def make_rows(seed: int = 1, count: int = 3000) -> list[Row]:
    rng = random.Random(seed)
    rows = []
    for symbol in SYMBOLS:
        times = sorted(rng.randrange(int(SPAN.total_seconds() * 1000)) for _ in range(count))
        for i, ms in enumerate(times):
            price, quantity = Decimal(rng.choice(PRICES)), Decimal(rng.choice(PRICES))
            when = T0 + timedelta(milliseconds=ms)
            rows.append(Row(symbol, 10**10 + i, price, quantity, when, rng.random() < 0.5))
    return rows


@pytest.fixture
def url(database_url: str) -> str:
    load(database_url, make_rows())
    return database_url


def stored(url: str, where: str = "true", params: Any = None) -> list[tuple[Any, ...]]:
    """The table as text, in export order (prices keep their stored scale)."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT symbol, trade_id, price::text, quantity::text, timestamp, is_buyer_maker "
            f"FROM trades WHERE {where} ORDER BY array_position(%s, symbol), timestamp, trade_id",
            [*(params or []), SYMBOLS],
        ).fetchall()


def export(
    url: str,
    fmt: str,
    start: datetime,
    end: datetime,
    symbols: list[str] = SYMBOLS,
    *,
    progress: Any = None,
) -> bytes:
    out = io.BytesIO()
    with psycopg.connect(url, autocommit=True) as conn:
        rows = write_trades(conn, symbols, start, end, fmt, out=out, progress=progress)
    data = out.getvalue()
    assert rows == len(
        stored(
            url,
            "timestamp >= %s AND timestamp < %s AND symbol = ANY(%s)",
            [start, end, [s.upper() for s in symbols]],
        )
    )
    return data


def test_csv_reloads_into_an_identical_table(url: str, empty_database_url: str) -> None:
    """CSV with a header; COPY it into a fresh trades table: the same rows, the same text."""
    data = export(url, "csv", *ALL)
    header, first = data.decode().splitlines()[:2]
    assert header == ",".join(COLUMNS)
    assert first.split(",")[4].endswith("Z") and first.split(",")[5] in ("true", "false")
    with psycopg.connect(empty_database_url) as conn:
        conn.execute(
            "CREATE TABLE trades (symbol text, trade_id bigint, price numeric, "
            "quantity numeric, timestamp timestamptz(3), is_buyer_maker boolean)"
        )
        with conn.cursor() as cur, cur.copy("COPY trades FROM STDIN (FORMAT csv, HEADER)") as copy:
            copy.write(data)
    assert stored(empty_database_url) == stored(url)


def test_ndjson_lines_carry_exact_strings(url: str) -> None:
    """One object per line, keys in order, decimals as exact strings, ISO UTC times."""
    start, end = T0 + timedelta(minutes=30, milliseconds=7), T0 + timedelta(hours=2, seconds=1)
    lines = export(url, "ndjson", start, end).decode().splitlines()
    parsed = [json.loads(line) for line in lines]
    assert all(list(item) == list(COLUMNS) for item in parsed)
    expected = stored(url, "timestamp >= %s AND timestamp < %s", [start, end])
    got = [
        (
            o["symbol"],
            o["trade_id"],
            o["price"],
            o["quantity"],
            datetime.fromisoformat(o["timestamp"]),
            o["is_buyer_maker"],
        )
        for o in parsed
    ]
    assert got == expected
    assert any(o["price"] == "0.00000001" for o in parsed)


def test_parquet_decimals_are_exact_with_one_scale_per_column(url: str) -> None:
    """decimal128 with the window's largest scale and enough digits: every value exact."""
    table = pq.read_table(io.BytesIO(export(url, "parquet", *ALL)))
    price_type = table.schema.field("price").type
    assert (price_type.precision, price_type.scale) == (16, 8)  # 99999999.99999999
    assert str(table.schema.field("timestamp").type) == "timestamp[ms, tz=UTC]"
    got = [tuple(row.values()) for row in table.to_pylist()]
    expected = [(s, i, Decimal(p), Decimal(q), t, m) for s, i, p, q, t, m in stored(url)]
    assert got == expected  # Decimal equality: 0.5 == 0.50000000, nothing rounded
    assert {f"{row[2]:f}" for row in got} >= {"0.00000001", "99999999.99999999"}


def test_parquet_scale_follows_the_data(database_url: str) -> None:
    """A window with only whole-number prices gets scale 0; a long quantity its own scale."""
    load(database_url, [Row("AAAUSDT", 1, Decimal("123"), Decimal("0.000000000001"), T0)])
    with psycopg.connect(database_url) as conn:
        assert decimal_types(conn, ["AAAUSDT"], *ALL) == ((3, 0), (13, 12))
        assert decimal_types(conn, ["NOPEUSDT"], *ALL) == ((1, 0), (1, 0))


def test_binance_layout_parses_back_to_the_table(url: str) -> None:
    """No header; id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch; ms before 2025, µs from."""
    data = export(url, "binance", *ALL, symbols=["ethusdt"]).decode()
    parsed = []
    for line in data.splitlines():
        trade_id, price, qty, quote, time, maker, best = line.split(",")
        stamp = int(time)
        # As an importer must: microseconds by magnitude, never by date alone.
        when = EPOCH + timedelta(**{"microseconds" if stamp > 10**14 else "milliseconds": stamp})
        product = Decimal(price) * Decimal(qty)  # rounded half away from zero, as PostgreSQL does
        assert Decimal(quote) == product.quantize(Decimal("1E-8"), ROUND_HALF_UP)
        assert best == "True"
        parsed.append(
            ("ETHUSDT", int(trade_id), price, qty, when, {"True": True, "False": False}[maker])
        )
    assert parsed == stored(url, "symbol = 'ETHUSDT'")
    times = [int(line.split(",")[4]) for line in data.splitlines()]
    assert min(times) < 10**13 < 10**15 < max(times)  # both units present


def test_binance_archive_writes_daily_zips_with_checksums(url: str, tmp_path: Path) -> None:
    """Per symbol and UTC day: <SYM>-trades-YYYY-MM-DD.zip holding the .csv, and .CHECKSUM."""
    with psycopg.connect(url, autocommit=True) as conn:
        paths = write_binance_archive(
            conn, ["btcusdt", "ETHUSDT"], T0 - timedelta(days=3), T0 + SPAN, tmp_path
        )
    names = sorted(p.name for p in tmp_path.iterdir())
    assert [p.name for p in paths] == [
        f"{s}-trades-{d}.zip" for s in SYMBOLS for d in ("2024-12-31", "2025-01-01")
    ]
    assert names == sorted([p.name for p in paths] + [p.name + ".CHECKSUM" for p in paths])
    rows = []
    for path in paths:
        digest, name = path.with_name(path.name + ".CHECKSUM").read_text().split()
        assert name == path.name and digest == hashlib.sha256(path.read_bytes()).hexdigest()
        with zipfile.ZipFile(path) as archive:
            assert archive.namelist() == [path.stem + ".csv"]
            rows += archive.read(path.stem + ".csv").decode().splitlines()
    assert len(rows) == len(stored(url))


def test_binance_single_zip_file_and_no_leftovers(url: str, tmp_path: Path) -> None:
    """A .zip output for one symbol; a failed write leaves no file behind."""
    target = tmp_path / "BTCUSDT-trades-2024-12-31.zip"
    with psycopg.connect(url, autocommit=True) as conn:
        assert write_binance_file(conn, "BTCUSDT", *ALL, target) == 3000
        with pytest.raises(UsageError):
            write_binance_file(conn, "BTCUSDT", T0, T0, tmp_path / "bad.zip")
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name, target.name + ".CHECKSUM"]


def test_progress_reports_increasing_counts_ending_at_the_total(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The callback sees a growing count; the last call is the number of rows."""
    monkeypatch.setattr(db_export, "PROGRESS_EVERY", 500)
    seen: list[int] = []
    export(url, "csv", *ALL, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 6000 and len(seen) > 1


def test_trades_iterator_streams_the_window(url: str) -> None:
    """trades() yields frozen Trades with aware UTC times, in time order."""
    start, end = T0 + timedelta(minutes=1), T0 + timedelta(minutes=50)
    with psycopg.connect(url) as conn:
        got = list(trades(conn, "btcusdt", start, end))
    expected = stored(
        url, "symbol = 'BTCUSDT' AND timestamp >= %s AND timestamp < %s", [start, end]
    )
    assert [
        (t.symbol, t.trade_id, f"{t.price:f}", f"{t.quantity:f}", t.timestamp, t.is_buyer_maker)
        for t in got
    ] == expected
    assert got[0].timestamp.tzinfo is UTC


def test_binance_format_refuses_several_symbols_in_one_stream(url: str) -> None:
    """The layout has no symbol column: one symbol per file."""
    with psycopg.connect(url) as conn, pytest.raises(UsageError, match="one symbol"):
        write_trades(conn, SYMBOLS, *ALL, "binance", out=io.BytesIO())
