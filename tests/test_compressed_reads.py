"""Every answer is the same over compressed months as over rows, trade by trade (#18 item 3).

The same trades are loaded twice: into one database they stay rows; in the other their
months are compressed into `trade_blocks` (January whole, February whole and then late rows
written into it, as a backfill does), so the second answers from rows and blocks together.
Every question of the library is asked of both and the answers compared exactly (`==` on the
frozen results, and `str` of every Decimal, so `70000.10000000` is not `70000.1`), and every
export format byte for byte.

The trades: a busy symbol across the month edge (bursts, fills sharing a millisecond), a rare
one (a trade every few minutes for two weeks, in blocks of many hours), one with id holes (ids
not consecutive inside a block) and one with dust prices and huge quantities.
"""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from dataclasses import astuple, fields, is_dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

import psycopg
import pytest

import binprice
from binprice.compressed.codec import CodecTrade, encode_blocks
from binprice.db.blocks import ensure_block_month, write_blocks
from binprice.db.compress import compress_month as compress_one
from binprice.db.compress_days import compress_days
from binprice.db.partitions import ensure_partitions
from binprice.watch import snapshot
from tests.trades_data import Row, load, twin_databases

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)
EDGE = FEB  # the month edge the busy symbol trades across
SYMBOLS = ("BUSYUSDT", "RAREUSDT", "HOLEUSDT", "DUSTUSDT")


def _price(units: int, decimals: int = 8) -> Decimal:
    return Decimal(units).scaleb(-decimals)


def _busy(rng: random.Random) -> list[Row]:
    rows, trade_id, tick = [], 1_000_000, 10_000_000  # 100.00000000 in 0.00001 ticks
    moment = EDGE - timedelta(minutes=25)
    while moment < EDGE + timedelta(minutes=25):
        fills = rng.choice((1, 1, 1, 2, 3, 5))  # a taker order sweeping a few levels at once
        side = rng.random() < 0.5
        for _ in range(fills):
            tick += rng.choice((-2, -1, 0, 0, 0, 1, 2))
            quantity = _price(rng.randint(1, 5_000_000))
            rows.append(Row("BUSYUSDT", trade_id, _price(tick * 1000), quantity, moment, side))
            trade_id += 1
        moment += timedelta(milliseconds=rng.choice((0, 1, 3, 40, 250, 900)))
    return rows


def _rare(rng: random.Random) -> list[Row]:
    rows, moment = [], datetime(2026, 1, 20, 0, 3, 17, 123000, tzinfo=UTC)
    for trade_id in range(1, 3000):
        rows.append(
            Row(
                "RAREUSDT",
                trade_id,
                _price(rng.randint(150, 160) * 10**6),
                _price(rng.randint(1, 10**9)),
                moment,
                rng.random() < 0.3,
            )
        )
        moment += timedelta(seconds=rng.randint(60, 800))
        if moment >= datetime(2026, 2, 3, tzinfo=UTC):
            break
    return rows


def _holes(rng: random.Random) -> list[Row]:
    rows, trade_id = [], 500
    moment = EDGE - timedelta(minutes=7, milliseconds=1)
    while moment < EDGE + timedelta(minutes=7):
        rows.append(
            Row(
                "HOLEUSDT",
                trade_id,
                _price(rng.randint(1990, 2010) * 10**6, 8),
                Decimal("0.50000000"),
                moment,
                trade_id % 3 == 0,
            )
        )
        trade_id += rng.choice((1, 1, 1, 1, 2, 7))  # ids missing here and there
        moment += timedelta(milliseconds=rng.choice((0, 5, 700, 4000)))
    return rows


def _dust(rng: random.Random) -> list[Row]:
    rows, moment = [], EDGE - timedelta(hours=3)
    for trade_id in range(77, 1077):
        rows.append(
            Row(
                "DUSTUSDT",
                trade_id,
                _price(rng.randint(1, 40)),
                _price(rng.randint(10**16, 9 * 10**17)),
                moment,
                False,
            )
        )
        moment += timedelta(seconds=rng.randint(1, 20))
    return rows


def _trades() -> list[Row]:
    rng = random.Random(18)
    return [*_busy(rng), *_rare(rng), *_holes(rng), *_dust(rng)]


TRADES = _trades()
#: Written after February was compressed: HOLEUSDT ids filling holes (a backfill) and trades
#: of a symbol seen only here.
LATE_FEB = [
    Row("LATEUSDT", 9, Decimal("3.10000000"), Decimal("1.00000000"), FEB + timedelta(seconds=30)),
    Row("LATEUSDT", 10, Decimal("3.20000000"), Decimal("2.00000000"), FEB + timedelta(minutes=3)),
]


def _late_fill(trades: list[Row]) -> list[Row]:
    holes = [r for r in trades if r.symbol == "HOLEUSDT" and r.timestamp >= FEB]
    have = {r.trade_id for r in holes}
    late = []
    for a, b in pairwise(holes):
        if b.trade_id > a.trade_id + 1 and len(late) < 5:
            missing = a.trade_id + 1
            assert missing not in have
            late.append(Row("HOLEUSDT", missing, a.price, Decimal("0.25000000"), a.timestamp, True))
    return late


LATE = [*LATE_FEB, *_late_fill(TRADES)]

# --- compressing: the codec's blocks written by binprice.db.blocks ----------------------------

#: Busy symbols get minute blocks; the others blocks of up to 1,000 trades within a UTC day.
DENSE = {"BUSYUSDT", "HOLEUSDT"}
MONTH_ROWS_SQL = """
SELECT symbol, trade_id, price::text, quantity::text,
       (extract(epoch FROM timestamp) * 1000)::int8, is_buyer_maker
FROM {table} ORDER BY symbol, timestamp, trade_id
"""


def compress_month(url: str, month: datetime) -> None:
    """Replace the month's row partition by the codec's blocks (the rollup stays as it is),
    in one transaction, as `db compress` does."""
    name = f"{month:%Y_%m}"
    after = (month + timedelta(days=32)).replace(day=1)
    with psycopg.connect(url) as conn:
        by_symbol: dict[str, list[CodecTrade]] = {}
        for symbol, *trade in conn.execute(MONTH_ROWS_SQL.format(table=f"trades_{name}")):
            by_symbol.setdefault(symbol, []).append(tuple(trade))  # type: ignore[arg-type]
        ensure_block_month(conn, month)
        for symbol, trades in by_symbol.items():
            write_blocks(conn, encode_blocks(symbol, trades, dense=symbol in DENSE))
        conn.execute(f"ALTER TABLE trades DETACH PARTITION trades_{name}")
        conn.execute(f"DROP TABLE trades_{name}")
        conn.execute(
            "INSERT INTO compressed_months (market, month, trades, blocks, bytes, row_bytes) "
            f"SELECT 0, %s, sum(trades), count(*), 0, 0 FROM trade_blocks_{name}",
            (month,),
        )
    with psycopg.connect(url, autocommit=True) as conn:
        ensure_partitions(conn, month, after)  # late writes land in the month's rows again


# --- the two databases -----------------------------------------------------------------------


def db_compress(url: str, month: datetime) -> None:
    """`db compress` of one month (the product's path: its block rule, checks and swap)."""
    with psycopg.connect(url, autocommit=True) as conn:
        compress_one(conn, month)


#: The live months' days before it are compressed day by day (`db compress --days-before`):
#: January's, and February's first day; February 2nd on stay rows (the live month's last days).
LIVE_CUT = FEB + timedelta(days=1, hours=9)


def compress_live_days(url: str) -> None:
    """`db compress --days-before LIVE_CUT` with no month closed long enough to go whole."""
    with psycopg.connect(url, autocommit=True) as conn:
        compress_days(conn, LIVE_CUT, months_before=datetime.min.replace(tzinfo=UTC))


@pytest.fixture(
    scope="module", params=["db-compress", "minute-blocks", "live-days", "live-days-merged"]
)
def pair(
    request: pytest.FixtureRequest, pg_admin_url: str, template_url: str
) -> Iterator[tuple[str, str]]:
    """(rows URL, compressed URL): the same trades, stored as rows and as blocks; compressed
    by `db compress` (every symbol here is sparse by its rule: 1,000-trade blocks), or with
    minute blocks for the busy symbols, or day by day as a live month's days are (the late
    rows then stay rows beside their days' blocks, or are merged by a second run)."""
    with twin_databases(pg_admin_url, JAN, MAR, TRADES) as urls:
        if request.param.startswith("live-days"):
            compress_live_days(urls[1])
        else:
            compress = db_compress if request.param == "db-compress" else compress_month
            compress(urls[1], JAN)
            compress(urls[1], FEB)
        for url in urls:
            load(url, LATE)
        if request.param == "live-days-merged":
            compress_live_days(urls[1])
        yield urls


def test_the_compressed_database_holds_blocks_for_both_months(
    pair: tuple[str, str], request: pytest.FixtureRequest
) -> None:
    """The fixture is what it claims: January's trades all in blocks, February's in blocks
    but its late rows (or, live, but its days from LIVE_CUT's and the late rows, until a
    second run merges them), and the rows database without blocks."""
    rows_url, blocks_url = pair
    if request.node.callspec.params["pair"].startswith("live-days"):
        _holds_live_days(blocks_url, request.node.callspec.params["pair"] == "live-days-merged")
        return
    with psycopg.connect(blocks_url) as conn:
        stored = conn.execute("SELECT sum(trades) FROM trade_blocks").fetchone()
        assert stored == (len(TRADES),)
        assert conn.execute("SELECT count(*) FROM trades").fetchone() == (len(LATE),)
        ids = conn.execute("SELECT count(*) FROM trade_blocks WHERE ids IS NOT NULL").fetchone()
        assert ids is not None and ids[0] > 0
        months = conn.execute("SELECT count(*) FROM compressed_months").fetchone()
        assert months == (2,)
    with psycopg.connect(rows_url) as conn:
        assert conn.execute("SELECT count(*) FROM trade_blocks").fetchone() == (0,)


def _holds_live_days(url: str, merged: bool) -> None:
    cut = LIVE_CUT.replace(hour=0)
    before = [r for r in TRADES if r.timestamp < cut]
    late = [r for r in LATE if r.timestamp < cut]
    with psycopg.connect(url) as conn:
        stored = conn.execute("SELECT sum(trades) FROM trade_blocks").fetchone()
        assert stored == (len(before) + (len(late) if merged else 0),)
        rows = conn.execute("SELECT count(*) FROM trades").fetchone()
        assert rows == (len(TRADES) - len(before) + (0 if merged else len(late)),)
        assert 0 < len(before) < len(TRADES) and late
        assert conn.execute("SELECT count(*) FROM compressed_months").fetchone() == (2,)


def _exact(value: Any) -> Any:
    """A comparable form that tells 1.50 from 1.5 (== on Decimal does not)."""
    if isinstance(value, Decimal):
        return ("D", str(value))
    if is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, *(_exact(getattr(value, f.name)) for f in fields(value)))
    if isinstance(value, (list, tuple)):
        return tuple(_exact(v) for v in value)
    return value


def both(pair: tuple[str, str], ask: Any) -> tuple[Any, Any]:
    answers = []
    for url in pair:
        with binprice.connect(url) as store:
            answers.append(ask(store))
    return answers[0], answers[1]


def assert_same(pair: tuple[str, str], ask: Any) -> Any:
    rows, blocks = both(pair, ask)
    assert _exact(blocks) == _exact(rows)
    return rows


ALL = [*SYMBOLS, "LATEUSDT"]


def test_latest(pair: tuple[str, str]) -> None:
    """`latest` of every symbol, of all recorded symbols, and of one missing symbol."""
    found = assert_same(pair, lambda s: s.latest(ALL))
    assert len(found) == len(ALL)
    assert_same(pair, lambda s: s.latest())
    assert_same(pair, lambda s: s.latest(["RAREUSDT", "NONEUSDT"]))


def _times() -> list[datetime]:
    rng = random.Random(3)
    picks = [JAN, FEB, MAR, EDGE - timedelta(milliseconds=1), datetime(2026, 1, 25, tzinfo=UTC)]
    for row in rng.sample(TRADES, 60):
        picks += [row.timestamp, row.timestamp + timedelta(microseconds=400)]
        picks.append(row.timestamp - timedelta(milliseconds=rng.randint(1, 90_000)))
    picks += [r.timestamp for r in LATE]
    return picks


@pytest.mark.parametrize("before", [False, True], ids=["nearest", "before"])
def test_at(pair: tuple[str, str], before: bool) -> None:
    """`at` at trade times, between trades, at the month edge, before and after everything."""
    times = _times()
    answers = assert_same(pair, lambda s: [s.at(t, ALL, before=before) for t in times])
    assert sum(len(a) for a in answers) > len(times)
    assert_same(pair, lambda s: [s.at(t, before=before, within="2s") for t in times[:40]])


def _windows() -> list[tuple[datetime, datetime]]:
    rng = random.Random(5)
    out = [
        (JAN, MAR),
        (EDGE - timedelta(minutes=3), EDGE + timedelta(minutes=2)),  # whole minutes only
        (EDGE - timedelta(seconds=150.5), EDGE + timedelta(seconds=61.25)),  # partial edges
        (EDGE - timedelta(seconds=20), EDGE + timedelta(seconds=20)),  # under two minutes
        (datetime(2026, 1, 22, 5, 7, 3, tzinfo=UTC), datetime(2026, 1, 29, 1, 0, tzinfo=UTC)),
    ]
    for row in rng.sample(TRADES, 12):
        start = row.timestamp - timedelta(seconds=rng.uniform(0, 400))
        out.append((start, start + timedelta(seconds=rng.uniform(1, 3000))))
    return out


def test_range(pair: tuple[str, str]) -> None:
    """`range`: sums, open/close, high/low and their times, over whole and partial minutes."""
    windows = _windows()
    answers = assert_same(pair, lambda s: [s.range(a, b, ALL) for a, b in windows])
    assert all(answers[:3])


@pytest.mark.parametrize("interval", ["1m", "5m", "1h", "1d", "1M"])
def test_candles(pair: tuple[str, str], interval: str) -> None:
    """`candles` at several intervals, aligned and unaligned windows."""
    windows = _windows()
    answers = assert_same(pair, lambda s: [s.candles(ALL, interval, a, b) for a, b in windows])
    assert all(answers[:3])


def test_trades(pair: tuple[str, str]) -> None:
    """`Store.trades()` trade by trade, over both months, partial windows and late rows."""
    for symbol in ALL:
        for start, end in _windows()[:6]:
            got = assert_same(pair, lambda s: list(s.trades(symbol, start, end)))  # noqa: B023
            if (start, end) == (JAN, MAR):
                assert len(got) == sum(1 for r in [*TRADES, *LATE] if r.symbol == symbol)


@pytest.mark.parametrize("fmt", ["csv", "ndjson", "binance", "parquet"])
def test_export(pair: tuple[str, str], fmt: str) -> None:
    """Every export format gives the same bytes."""
    pytest.importorskip("pyarrow") if fmt == "parquet" else None
    symbols = ["HOLEUSDT"] if fmt == "binance" else ALL
    for start, end in _windows()[:4]:
        outs = []
        for url in pair:
            out = io.BytesIO()
            with binprice.connect(url) as store:
                store.export(symbols, start, end, fmt, out)
            outs.append(out.getvalue())
        assert outs[0] == outs[1]
        assert outs[0].count(b"\n") > 3 or fmt == "parquet"


def test_binance_archive(pair: tuple[str, str], tmp_path: Any) -> None:
    """Binance's daily zips of several symbols (a directory) hold the same CSV."""
    import zipfile

    contents = []
    for n, url in enumerate(pair):
        target = tmp_path / f"out{n}"
        with binprice.connect(url) as store:
            store.export(["BUSYUSDT", "RAREUSDT"], JAN, MAR, "binance", target)
        contents.append(
            {p.name: zipfile.ZipFile(p).read(p.stem + ".csv") for p in sorted(target.glob("*.zip"))}
        )
    assert contents[0] == contents[1]
    assert len(contents[0]) > 3


def test_watch(pair: tuple[str, str]) -> None:
    """`watch` snapshots at pinned clocks around the compressed months."""
    moments = [EDGE + timedelta(seconds=s) for s in (-600, -5, 0, 7, 301, 1500)]
    moments.append(datetime(2026, 1, 27, tzinfo=UTC))

    def ask(store: binprice.Store) -> list[Any]:
        return [
            snapshot(store.connection, ALL, window=timedelta(minutes=w), now=m)
            for m in moments
            for w in (1, 60)
        ]

    assert_same(pair, ask)


def test_status(pair: tuple[str, str]) -> None:
    """`status` per symbol: first and last trade with their times, counts, gaps (all but the
    last trade's age, which is measured on each database's own clock)."""
    rows, blocks = both(pair, lambda s: s.status(ALL))

    def stored(status: Any) -> list[Any]:
        return [_exact(astuple(s)[:-1]) for s in status.symbols]

    assert stored(blocks) == stored(rows)
    assert all(s.first_at is not None and s.last_at is not None for s in blocks.symbols)


def test_verify(pair: tuple[str, str]) -> None:
    """`gaps --verify` finds the same holes in blocks as in rows."""
    found = assert_same(pair, lambda s: s.verify(ALL))
    assert any(check.holes for check in found.symbols)
    assert_same(pair, lambda s: s.verify(ALL, start=EDGE, end=EDGE + timedelta(minutes=3)))


def test_chart(pair: tuple[str, str]) -> None:
    """`chart` of a window inside a candle draws the trades themselves."""
    window = (EDGE - timedelta(seconds=30), EDGE + timedelta(seconds=30))
    assert_same(pair, lambda s: s.chart("BUSYUSDT", *window))


def test_gap_keeper_reads(pair: tuple[str, str]) -> None:
    """What `gaps --repair` and backfills read (stored ids around and inside a range, and
    whether a gap is filled) is the same over blocks as over rows."""
    import asyncio

    from binprice.db import gaprows

    holes = sorted(r.trade_id for r in [*TRADES, *LATE] if r.symbol == "HOLEUSDT")
    probes = [holes[0] - 5, holes[0], holes[0] + 1, holes[-1], holes[-1] + 9]
    probes += random.Random(9).sample(range(holes[0], holes[-1]), 40)
    ranges = [(holes[0] - 3, holes[-1] + 3), (holes[10], holes[60]), (holes[5] + 1, holes[5] + 1)]

    async def ask(url: str) -> list[Any]:
        answers: list[Any] = []
        async with await psycopg.AsyncConnection.connect(url) as conn:
            for symbol in ("HOLEUSDT", "RAREUSDT", "BUSYUSDT", "NONEUSDT"):
                for probe in probes:
                    answers.append(await gaprows.stored_before(conn, symbol, probe))
                    answers.append(await gaprows.stored_after(conn, symbol, probe))
                answers.append(await gaprows.last_stored(conn, symbol))
            for first, last in ranges:
                answers.append(await gaprows.missing_in_range(conn, "HOLEUSDT", first, last))
                await gaprows.record_gap(conn, "HOLEUSDT", first, last, "open")
                answers.append(await gaprows.settle_gap(conn, "HOLEUSDT", first, last))
            await conn.rollback()
        return answers

    rows, blocks = (asyncio.run(ask(url)) for url in pair)
    assert blocks == rows
    assert any(rows) and any(isinstance(a, list) and a for a in rows)
