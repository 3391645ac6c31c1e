"""Candidate layouts for closed months, compressed inside PostgreSQL (issue #18): bytes per
trade, build time, full read-back (checked trade by trade) and `at` lookups, beside the row
form and Binance's own zip of the same rows, in one run on one server.

    python benchmarks/layouts.py [--database-url URL] [--trades N] [--days D] [--runs N]
                                 [--rare-days D] [--only "TEXT|TEXT"] [--no-verify]

Data. No real trade sample ships with the repository (tests/fixtures/binance is constructed),
so :func:`realistic_trades` draws a BTCUSDT-like tape from a small market model whose knobs
are the statistics that decide compressibility: taker orders arriving in bursts with an
intraday cycle, each filling a geometric number of resting orders that share one millisecond
and one side and walk away from the touch; a 0.01 tick, the touch moving between orders by a
Laplace number of ticks (a ~1 % daily range at ~100,000 USDT); quantities on the 0.00001 lot
step, log-normal with a fifth of them on round sizes; consecutive ids; 8-decimal strings as
Binance sends them. Its Binance-format daily zip comes out near the 14.2 bytes/trade that
issue #18 measured on a day resampled from real trades, which is the calibration target.

What runs, on a throwaway embedded server unless --database-url is given:

1. The rows: `--trades` trades over `--days` UTC days COPYed into `trades` of a database at
   head (month partitions made first, rollup triggers on, as `binprice import` writes them),
   VACUUM ANALYZE; bytes per trade of the month partition (heap, TOAST, indexes) and of the
   rollup, as benchmarks/storage.py counts them. The same rows written as Binance's daily
   archive CSV (`id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch`, no header), deflated
   into a zip, both with millisecond times (files before 2025) and with microsecond ones.
2. Each layout of :data:`LAYOUTS`: a table of blocks built from the month partition with one
   `INSERT … SELECT … array_agg` (timed), VACUUM ANALYZE, its pg_total_relation_size (heap +
   TOAST + its one index) per trade, with and without the rollup; the trades decoded back with
   `unnest` compared with the rows by `EXCEPT` both ways on (symbol, id, price text, quantity
   text, time, side), so a lost trailing zero counts as a difference; the time of reading all
   trades back (server-side aggregate, and `COPY … TO STDOUT` to the client) beside the same
   on the rows; `at` (the last trade at or before a random time, and the first at or after)
   p50/p95 client round trip over `--runs` times, beside the row form's `AT_SQL`.
3. A rare symbol (one trade a minute for `--rare-days` days) in a database of its own: the
   row form against blocks per minute, hour, day and 1,000 trades.

lz4 variants run only where the server was built with lz4 (the embedded build is not: it
answers `SET default_toast_compression = lz4` with "Available values: pglz").
Prints numbers; asserts nothing (a read-back that differs is printed as such).
"""

from __future__ import annotations

import argparse
import io
import math
import random
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).parent))
from candles import scratch
from queries import server
from storage import SIZES_SQL

from binprice.db.partitions import ensure_partitions
from binprice.db.queries import AT_SQL

SYMBOL = "BTCUSDT"
RARE = "RAREUSDT"
DAY = date(2026, 4, 1)
DAY_MS = 86_400_000
FIRST_ID = 5_000_000_000
#: Price in ticks of 0.01 USDT, quantity in lots of 0.00001 BTC (BTCUSDT's filters).
START_TICKS = 10_000_000
PRICE_DECIMALS, QTY_DECIMALS = 2, 5
#: Binance sends every decimal with 8 places.
WIRE_DECIMALS = 8
MARKET_SPOT = 0
COLUMNS = "symbol, trade_id, price, quantity, timestamp, is_buyer_maker"
MB = 1024 * 1024


# --- the data --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Tape:
    """One symbol's trades in id order, as parallel lists of integers."""

    symbol: str
    ids: list[int]
    ticks: list[int]  # price / 0.01
    lots: list[int]  # quantity / 0.00001
    ms: list[int]  # epoch ms
    maker: list[bool]


ROUND_LOTS = (8, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 10_000)


def realistic_trades(count: int, start: date, days: int, seed: int = 7) -> Tape:
    """`count` BTCUSDT-like trades spread over `days` days from `start` (see the docstring)."""
    rng = random.Random(seed)
    ids: list[int] = []
    ticks: list[int] = []
    lots: list[int] = []
    raw: list[float] = []
    maker: list[bool] = []
    bid, sell, clock = START_TICKS, rng.random() < 0.5, 0.0
    while len(ids) < count:
        # Bursty arrivals (half within ~15 ms of the last order) with an intraday cycle.
        phase = math.sin(2 * math.pi * days * len(ids) / count)
        mean = 15.0 if rng.random() < 0.5 else 300.0
        clock += rng.expovariate(1 / mean) / (1 + 0.6 * phase)
        sell = sell if rng.random() < 0.6 else not sell
        fills = 1 if rng.random() < 0.55 else 1 + min(50, int(rng.expovariate(0.35)) + 1)
        price = bid if sell else bid + 1
        for _ in range(min(fills, count - len(ids))):
            ids.append(FIRST_ID + len(ids))
            ticks.append(price)
            raw.append(clock)
            maker.append(sell)
            if rng.random() < 0.2:
                lots.append(rng.choice(ROUND_LOTS))
            else:
                lots.append(max(1, min(10**7, round(math.exp(rng.gauss(math.log(60), 1.9))))))
            if rng.random() < 0.25:  # the next resting order is further from the touch
                price += -rng.randint(1, 5) if sell else rng.randint(1, 5)
        if rng.random() < 0.55:  # the touch moves between orders
            step = rng.expovariate(1 / 80)
            bid = max(1, bid + round(step if rng.random() < 0.5 else -step))
    origin = int(datetime.combine(start, datetime.min.time(), UTC).timestamp() * 1000)
    scale = (days * DAY_MS - 1) / raw[-1]
    ms = [origin + int(t * scale) for t in raw]
    return Tape(SYMBOL, ids, ticks, lots, ms, maker)


def rare_trades(start: date, days: int) -> Tape:
    """One trade a minute, at a random second of it, for `days` days."""
    rng = random.Random(3)
    origin = int(datetime.combine(start, datetime.min.time(), UTC).timestamp() * 1000)
    n = days * 1440
    ms = [origin + i * 60_000 + rng.randrange(60_000) for i in range(n)]
    ticks, price = [], 1_234
    for _ in range(n):
        price = max(1, price + rng.choice((-1, 0, 0, 1)))
        ticks.append(price)
    lots = [rng.choice(ROUND_LOTS) * rng.randint(1, 30) for _ in range(n)]
    return Tape(
        RARE,
        list(range(700_000, 700_000 + n)),
        ticks,
        lots,
        ms,
        [rng.random() < 0.5 for _ in range(n)],
    )


def fixed(units: int, decimals: int, width: int = WIRE_DECIMALS) -> str:
    whole, part = divmod(units, 10**decimals)
    return f"{whole}.{part:0{decimals}d}{'0' * (width - decimals)}"


def copy_lines(tape: Tape) -> Iterator[str]:
    stamps: dict[int, str] = {}
    for i, tid in enumerate(tape.ids):
        sec, milli = divmod(tape.ms[i], 1000)
        if sec not in stamps:
            stamps.clear()
            stamps[sec] = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%d %H:%M:%S")
        yield (
            f"{tape.symbol}\t{tid}\t{fixed(tape.ticks[i], PRICE_DECIMALS)}\t"
            f"{fixed(tape.lots[i], QTY_DECIMALS)}\t{stamps[sec]}.{milli:03d}+00\t"
            f"{'t' if tape.maker[i] else 'f'}\n"
        )


def archive_zip_bytes(tape: Tape, micros: bool) -> int:
    """Bytes of Binance's daily zips of the tape (deflate, one CSV member per day)."""
    total = 0
    by_day: dict[int, list[str]] = {}
    for i, tid in enumerate(tape.ids):
        # quoteQty = price * qty, exact at 10^-7 here, written with 8 decimals as Binance does.
        quote = fixed(tape.ticks[i] * tape.lots[i], PRICE_DECIMALS + QTY_DECIMALS)
        stamp = tape.ms[i] * 1000 + (tid * 7919) % 1000 if micros else tape.ms[i]
        by_day.setdefault(tape.ms[i] // DAY_MS, []).append(
            f"{tid},{fixed(tape.ticks[i], PRICE_DECIMALS)},{fixed(tape.lots[i], QTY_DECIMALS)},"
            f"{quote},{stamp},{'True' if tape.maker[i] else 'False'},True\n"
        )
    for day, lines in by_day.items():
        name = f"{tape.symbol}-trades-{datetime.fromtimestamp(day * 86_400, UTC).date()}"
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(f"{name}.csv", "".join(lines))
        total += out.tell()
    return total


def load_rows(admin: str, name: str, tape: Tape, days: int) -> tuple[str, float]:
    """A database at head holding the tape in `trades` (month made first), vacuumed; its URL
    and the COPY's rate."""
    url = scratch(admin, name, "head")
    start = datetime.fromtimestamp(tape.ms[0] / 1000, UTC)
    with psycopg.connect(url) as conn:
        ensure_partitions(conn, start, start + timedelta(days=days))
        conn.commit()
        began = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY trades ({COLUMNS}) FROM STDIN") as copy:
            chunk: list[str] = []
            for line in copy_lines(tape):
                chunk.append(line)
                if len(chunk) == 100_000:
                    copy.write("".join(chunk))
                    chunk.clear()
            copy.write("".join(chunk))
        conn.commit()
        spent = time.perf_counter() - began
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE trades")
        conn.execute("VACUUM ANALYZE trade_minutes")
    return url, len(tape.ids) / spent


def month_partition(conn: psycopg.Connection[Any], tape: Tape) -> str:
    when = datetime.fromtimestamp(tape.ms[0] / 1000, UTC)
    name = f"trades_{when:%Y_%m}"
    conn.execute(f"SELECT '{name}'::regclass")  # fails loudly if the layout of months changed
    return name


# --- the layouts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """One candidate: how trades are cut into blocks, how each column is coded, and the TOAST
    settings of the table."""

    name: str
    #: "minute", "hour", "day", or a number of trades.
    block: str | int
    #: "plain": offsets from the block's first time, scaled integers; "delta": times and
    #: prices as differences from the previous trade (int4); "numeric": numeric[] values.
    codec: str
    storage: str = "MAIN"
    target: int | None = 128
    compression: str = "pglz"
    #: The per-minute rollup's columns in the block row (minute blocks only), so no rollup
    #: table is needed beside it.
    rollup: bool = False


LAYOUTS = (
    Layout("A minute plain, EXTENDED, default target", "minute", "plain", "EXTENDED", None),
    Layout("A minute plain, EXTENDED, target 128", "minute", "plain", "EXTENDED", 128),
    Layout("A minute plain, MAIN, target 128", "minute", "plain"),
    Layout("B minute delta, MAIN, target 128", "minute", "delta"),
    Layout("B minute delta + rollup columns", "minute", "delta", rollup=True),
    Layout("C 1000 trades delta, MAIN", 1000, "delta"),
    Layout("C 4096 trades delta, MAIN", 4096, "delta"),
    Layout("C 10000 trades delta, EXTENDED", 10_000, "delta", "EXTENDED"),
    Layout("C 10000 trades plain, EXTENDED", 10_000, "plain", "EXTENDED"),
    Layout("D minute numeric[], MAIN, target 128", "minute", "numeric"),
)
LZ4_LAYOUTS = (
    Layout("A minute plain, MAIN, lz4", "minute", "plain", compression="lz4"),
    Layout("B minute delta, MAIN, lz4", "minute", "delta", compression="lz4"),
    Layout("C 10000 trades delta, EXTENDED, lz4", 10_000, "delta", "EXTENDED", compression="lz4"),
)
RARE_LAYOUTS = (
    Layout("minute blocks, delta", "minute", "delta"),
    Layout("hour blocks, delta", "hour", "delta"),
    Layout("day blocks, delta", "day", "delta"),
    Layout("1000-trade blocks, delta", 1000, "delta"),
)


def array_columns(layout: Layout) -> str:
    if layout.codec == "numeric":
        return "ms int4[] NOT NULL, price numeric[] NOT NULL, qty numeric[] NOT NULL"
    if layout.codec == "delta":
        return "ms int4[] NOT NULL, price int4[] NOT NULL, qty int8[] NOT NULL"
    return "ms int4[] NOT NULL, price int8[] NOT NULL, qty int8[] NOT NULL"


ROLLUP_COLUMNS = """, volume numeric NOT NULL, notional numeric NOT NULL, high numeric NOT NULL,
    low numeric NOT NULL, open numeric NOT NULL, close numeric NOT NULL"""


def create_sql(table: str, layout: Layout) -> str:
    options = f" WITH (toast_tuple_target = {layout.target})" if layout.target else ""
    arrays = ("ms", "price", "qty", "ids", "side")
    alters = "; ".join(
        f"ALTER TABLE {table} ALTER COLUMN {c} SET STORAGE {layout.storage}, "
        f"ALTER COLUMN {c} SET COMPRESSION {layout.compression}"
        for c in arrays
    )
    return f"""
CREATE TABLE {table} (
    market smallint NOT NULL,          -- 0 spot, 1 USD-M, 2 COIN-M
    symbol text NOT NULL,
    first_ts timestamptz NOT NULL,     -- time of the block's first trade
    first_id bigint NOT NULL,
    trades int4 NOT NULL,
    last_id bigint NOT NULL,
    base_price int8 NOT NULL,          -- first price, scaled (delta codec)
    price_scale int2 NOT NULL,         -- integers are value * 10^scale
    qty_scale int2 NOT NULL,
    price_digits int2 NOT NULL,        -- the stored numerics' own scale (8 from Binance)
    qty_digits int2 NOT NULL,
    ids int4[],                        -- id offsets from first_id; NULL when consecutive
    side bit varying NOT NULL,         -- is_buyer_maker, one bit a trade
    {array_columns(layout)}{ROLLUP_COLUMNS if layout.rollup else ""}
){options};
{alters};
CREATE INDEX ON {table} (market, symbol, first_ts, first_id)"""


def block_key(layout: Layout) -> str:
    if isinstance(layout.block, int):
        return f"(row_number() OVER (PARTITION BY symbol ORDER BY trade_id) - 1) / {layout.block}"
    return f"date_trunc('{layout.block}', timestamp, 'UTC')"


def build_sql(table: str, source: str, layout: Layout) -> str:
    """One INSERT … SELECT: per block its scales, then every column aggregated in id order."""
    if layout.codec == "numeric":
        price, qty = "array_agg(price ORDER BY trade_id)", "array_agg(quantity ORDER BY trade_id)"
    else:
        price = (
            "array_agg(p ORDER BY trade_id)"
            if layout.codec == "plain"
            else "array_agg((p - coalesce(lag_p, p))::int4 ORDER BY trade_id)"
        )
        qty = "array_agg(q ORDER BY trade_id)"
    ms = (
        "array_agg(off ORDER BY trade_id)"
        if layout.codec != "delta"
        else "array_agg((off - coalesce(lag_off, 0))::int4 ORDER BY trade_id)"
    )
    rollup = ""
    if layout.rollup:
        rollup = """, sum(quantity), sum(price * quantity), max(price), min(price),
            (array_agg(price ORDER BY trade_id))[1],
            (array_agg(price ORDER BY trade_id DESC))[1]"""
    return f"""
WITH keyed AS (
    SELECT {COLUMNS}, {block_key(layout)} AS blk FROM {source}
), scaled AS (
    SELECT k.*, min(timestamp) OVER w AS first_ts,
           max(min_scale(price)) OVER w AS ps, max(min_scale(quantity)) OVER w AS qs,
           max(scale(price)) OVER w AS pd, max(scale(quantity)) OVER w AS qd
    FROM keyed AS k WINDOW w AS (PARTITION BY symbol, blk)
), coded AS (
    SELECT s.*, (price * 10::numeric ^ ps)::int8 AS p, (quantity * 10::numeric ^ qs)::int8 AS q,
           (extract(epoch FROM timestamp - first_ts) * 1000)::int4 AS off
    FROM scaled AS s
), lagged AS (
    SELECT c.*, lag(p) OVER w AS lag_p, lag(off) OVER w AS lag_off
    FROM coded AS c WINDOW w AS (PARTITION BY symbol, blk ORDER BY trade_id)
)
INSERT INTO {table}
SELECT {MARKET_SPOT}, symbol, first_ts, min(trade_id), count(*), max(trade_id),
       (array_agg(p ORDER BY trade_id))[1], ps, qs, pd, qd,
       CASE WHEN max(trade_id) - min(trade_id) + 1 = count(*) THEN NULL
            ELSE array_agg((trade_id - first_id_of_block)::int4 ORDER BY trade_id) END,
       string_agg(CASE WHEN is_buyer_maker THEN '1' ELSE '0' END, '' ORDER BY trade_id)::varbit,
       {ms}, {price}, {qty}{rollup}
FROM (SELECT l.*, min(trade_id) OVER (PARTITION BY symbol, blk) AS first_id_of_block
      FROM lagged AS l) AS x
GROUP BY symbol, blk, first_ts, ps, qs, pd, qd
ORDER BY symbol, first_ts"""


def decoded_sql(table: str, layout: Layout, where: str = "") -> str:
    """The block table as trade rows (what a `trades_all` view would be)."""
    if layout.codec == "numeric":
        price, qty = "u.p", "u.q"
    else:
        p = "b.base_price + sum(u.p) OVER w" if layout.codec == "delta" else "u.p"
        price = f"round(({p})::numeric / 10::numeric ^ b.price_scale, b.price_digits)"
        qty = "round(u.q::numeric / 10::numeric ^ b.qty_scale, b.qty_digits)"
    off = "sum(u.off) OVER w" if layout.codec == "delta" else "u.off"
    return f"""
SELECT b.symbol, b.first_id + coalesce(b.ids[u.i] , u.i - 1) AS trade_id,
       {price} AS price, {qty} AS quantity,
       b.first_ts + ({off}) * interval '1 millisecond' AS timestamp,
       get_bit(b.side, (u.i - 1)::int4) = 1 AS is_buyer_maker
FROM {table} AS b
CROSS JOIN LATERAL unnest(b.ms, b.price, b.qty) WITH ORDINALITY AS u(off, p, q, i)
{where}
WINDOW w AS (PARTITION BY b.symbol, b.first_id ORDER BY u.i)"""


def at_sql(table: str, layout: Layout) -> str:
    """The last trade at or before %(ts)s and the first at or after. Two blocks at most: the
    one that starts last at or before the time, and the one after it. Only their time column
    is unnested to find the two positions; price, quantity and side are decoded at those
    positions alone (a prefix sum of the deltas for the delta codec)."""
    two = f"""
    (SELECT * FROM {table} WHERE market = {MARKET_SPOT} AND symbol = %(symbol)s
     AND first_ts <= %(ts)s ORDER BY first_ts DESC, first_id DESC LIMIT 1)
    UNION ALL
    (SELECT * FROM {table} WHERE market = {MARKET_SPOT} AND symbol = %(symbol)s
     AND first_ts > %(ts)s ORDER BY first_ts, first_id LIMIT 1)"""
    off = "sum(d) OVER (ORDER BY i)" if layout.codec == "delta" else "d"
    if layout.codec == "numeric":
        price, qty = "b.price[p.i]", "b.qty[p.i]"
    else:
        raw = (
            "b.base_price + (SELECT sum(x) FROM unnest(b.price[1:p.i]) AS x)"
            if layout.codec == "delta"
            else "b.price[p.i]"
        )
        price = f"round(({raw})::numeric / 10::numeric ^ b.price_scale, b.price_digits)"
        qty = "round(b.qty[p.i]::numeric / 10::numeric ^ b.qty_scale, b.qty_digits)"
    return f"""
WITH blk AS MATERIALIZED ({two}),
pos AS MATERIALIZED (
    SELECT b.first_id, t.i, b.first_ts + t.off * interval '1 millisecond' AS ts
    FROM blk AS b CROSS JOIN LATERAL (
        SELECT i, {off} AS off FROM unnest(b.ms) WITH ORDINALITY AS u(d, i)) AS t
), pick AS (
    (SELECT * FROM pos WHERE ts <= %(ts)s ORDER BY ts DESC, first_id DESC, i DESC LIMIT 1)
    UNION ALL
    (SELECT * FROM pos WHERE ts >= %(ts)s ORDER BY ts, first_id, i LIMIT 1)
)
SELECT b.symbol, b.first_id + coalesce(b.ids[p.i], p.i - 1) AS trade_id,
       {price} AS price, {qty} AS quantity, p.ts AS timestamp,
       get_bit(b.side, (p.i - 1)::int4) = 1 AS is_buyer_maker
FROM pick AS p JOIN blk AS b USING (first_id)"""


# --- measuring -------------------------------------------------------------------------------


def text_rows(query: str) -> str:
    return (
        f"SELECT symbol, trade_id, price::text, quantity::text, timestamp, is_buyer_maker "
        f"FROM ({query}) AS r"
    )


def timed(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> tuple[float, Any]:
    began = time.perf_counter()
    row = conn.execute(sql, params).fetchall()
    return time.perf_counter() - began, row


def copy_out_seconds(conn: psycopg.Connection[Any], query: str) -> float:
    began = time.perf_counter()
    with conn.cursor() as cur, cur.copy(f"COPY ({query}) TO STDOUT") as copy:
        for _ in copy:
            pass
    return time.perf_counter() - began


def lookup_times(
    conn: psycopg.Connection[Any], sql: str, times: list[datetime], params: dict[str, Any]
) -> tuple[float, float]:
    """p50 and p95 client round trip (ms) of `sql` at each time, prepared, warm."""
    samples = []
    for ts in times:
        began = time.perf_counter()
        conn.execute(sql, {**params, "ts": ts}, prepare=True).fetchall()
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def at_differences(conn: psycopg.Connection[Any], sql: str, times: list[datetime]) -> int:
    """Times at which the blocks' last trade at or before differs from the row form's."""
    wrong = 0
    for ts in times:
        rows = conn.execute(
            AT_SQL, {"symbols": [SYMBOL], "ts": ts, "before": True, "market": 0}
        ).fetchall()
        mine = conn.execute(sql, {"symbol": SYMBOL, "ts": ts}).fetchall()
        want = rows[0][1:4]  # price, timestamp, trade_id of the trade at or before
        got = next(((r[2], r[4], r[1]) for r in mine if r[4] <= ts), None)
        wrong += got is None or (str(got[0]), got[1], got[2]) != (str(want[0]), *want[1:])
    return wrong


@dataclass(slots=True)
class Measured:
    name: str
    bytes_per_trade: float
    with_rollup: float
    build_s: float
    differ: int | None
    read_s: float
    copy_s: float
    at_p50: float
    at_p95: float
    blocks: int


def measure(
    conn: psycopg.Connection[Any],
    layout: Layout,
    source: str,
    count: int,
    rollup_bytes: int,
    *,
    times: list[datetime],
    verify: bool,
) -> Measured:
    table = "blocks_" + "".join(ch if ch.isalnum() else "_" for ch in layout.name.lower())[:40]
    conn.execute(f"DROP TABLE IF EXISTS {table}")
    conn.execute(create_sql(table, layout))
    conn.commit()
    began = time.perf_counter()
    conn.execute(build_sql(table, source, layout))
    conn.commit()
    build_s = time.perf_counter() - began
    conn.autocommit = True
    conn.execute(f"VACUUM ANALYZE {table}")
    conn.autocommit = False
    size, blocks = conn.execute(
        f"SELECT pg_total_relation_size('{table}'), (SELECT count(*) FROM {table})"
    ).fetchone()  # type: ignore[misc]
    differ = None
    decoded = decoded_sql(table, layout)
    if verify:
        rows = text_rows(f"SELECT {COLUMNS} FROM {source}")
        back = text_rows(decoded)
        differ = conn.execute(
            f"SELECT (SELECT count(*) FROM ({rows} EXCEPT ALL {back}) AS a)"
            f"     + (SELECT count(*) FROM ({back} EXCEPT ALL {rows}) AS b)"
        ).fetchone()[0]  # type: ignore[index]
    read_s, _ = timed(conn, f"SELECT count(*), sum(price), sum(quantity) FROM ({decoded}) AS d")
    copy_s = copy_out_seconds(conn, decoded)
    sql = at_sql(table, layout)
    p50, p95 = lookup_times(conn, sql, times, {"symbol": SYMBOL})
    differ = (differ or 0) + at_differences(conn, sql, times)
    conn.commit()
    with_rollup = size if layout.rollup else size + rollup_bytes
    return Measured(
        layout.name,
        size / count,
        with_rollup / count,
        build_s,
        differ,
        read_s,
        copy_s,
        p50,
        p95,
        blocks,
    )


def row_form(
    conn: psycopg.Connection[Any], source: str, count: int, times: list[datetime]
) -> Measured:
    heap, indexes, total, _ = conn.execute(SIZES_SQL).fetchone()  # type: ignore[misc]
    rollup = conn.execute("SELECT pg_total_relation_size('trade_minutes')").fetchone()[0]  # type: ignore[index]
    print(
        f"  row form: heap {heap / count:.1f}, indexes {indexes / count:.1f}, "
        f"partition total {total / count:.1f}, rollup {rollup / count:.2f} bytes/trade"
    )
    read_s, _ = timed(conn, f"SELECT count(*), sum(price), sum(quantity) FROM {source}")
    copy_s = copy_out_seconds(conn, f"SELECT {COLUMNS} FROM {source}")
    params = {"symbols": [SYMBOL], "before": False, "market": 0}
    p50, p95 = lookup_times(conn, AT_SQL, times, params)
    return Measured(
        "row form (trades partition + 3 indexes)",
        total / count,
        (total + rollup) / count,
        0.0,
        0,
        read_s,
        copy_s,
        p50,
        p95,
        count,
    )


def print_table(results: list[Measured], count: int) -> None:
    head = (
        "layout",
        "B/trade",
        "+rollup",
        "build s",
        "differ",
        "read s",
        "COPY s",
        "at p50",
        "at p95",
        "trades/blk",
    )
    widths = (-42, 7, 7, 7, 6, 6, 6, 6, 6, 10)
    print(
        "\n  "
        + " ".join(
            f"{h:{'<' if w < 0 else '>'}{abs(w)}}" for h, w in zip(head, widths, strict=True)
        )
    )
    for m in results:
        differ = "-" if m.differ is None else str(m.differ)
        print(
            f"  {m.name:<42} {m.bytes_per_trade:7.2f} {m.with_rollup:7.2f} {m.build_s:7.2f} "
            f"{differ:>6} {m.read_s:6.2f} {m.copy_s:6.2f} {m.at_p50:6.2f} {m.at_p95:6.2f} "
            f"{count / m.blocks:10.1f}"
        )


def has_lz4(conn: psycopg.Connection[Any]) -> bool:
    try:
        conn.execute("SET default_toast_compression = lz4")
    except psycopg.errors.InvalidParameterValue:
        conn.rollback()
        return False
    conn.execute("RESET default_toast_compression")
    return True


def random_times(tape: Tape, runs: int) -> list[datetime]:
    rng = random.Random(11)
    return [
        datetime.fromtimestamp(rng.randrange(tape.ms[0], tape.ms[-1]) / 1000, UTC)
        for _ in range(runs)
    ]


def busy_part(admin: str, args: argparse.Namespace) -> None:
    began = time.perf_counter()
    tape = realistic_trades(args.trades, DAY, args.days)
    count = len(tape.ids)
    print(
        f"{count:,} {SYMBOL} trades over {args.days} day(s) generated in "
        f"{time.perf_counter() - began:.1f} s"
    )
    for micros in (False, True):
        size = archive_zip_bytes(tape, micros)
        unit = "µs" if micros else "ms"
        print(
            f"  Binance daily zip(s), times in {unit}: {size / count:.2f} bytes/trade "
            f"({size / MB:.1f} MB)"
        )
    url, rate = load_rows(admin, "bp_layouts", tape, args.days)
    print(f"  COPY into trades (head, rollup triggers on): {rate:,.0f} trades/s")
    times = random_times(tape, args.runs)
    with psycopg.connect(url) as conn:
        source = month_partition(conn, tape)
        rollup = conn.execute("SELECT pg_total_relation_size('trade_minutes')").fetchone()[0]  # type: ignore[index]
        results = [row_form(conn, source, count, times)]
        layouts = list(LAYOUTS) + (list(LZ4_LAYOUTS) if has_lz4(conn) else [])
        if not has_lz4(conn):
            print("  (this server has no lz4: pglz only)")
        for layout in layouts:
            if args.only and not any(key in layout.name for key in args.only.split("|")):
                continue
            results.append(
                measure(conn, layout, source, count, rollup, times=times, verify=args.verify)
            )
            m = results[-1]
            print(
                f"  measured {m.name}: {m.bytes_per_trade:.2f} B/trade, differ {m.differ}",
                flush=True,
            )
    print(
        f"\n{count:,} trades; sizes after VACUUM ANALYZE; B/trade = pg_total_relation_size"
        " (heap + TOAST + index); +rollup adds trade_minutes; read = server-side aggregate of"
        f" every decoded trade; COPY = all trades to the client; at = ms, {args.runs} times:"
    )
    print_table(results, count)


def rare_part(admin: str, args: argparse.Namespace) -> None:
    tape = rare_trades(DAY, args.rare_days)
    count = len(tape.ids)
    url, _ = load_rows(admin, "bp_layouts_rare", tape, args.rare_days)
    print(f"\na rare symbol: one trade a minute for {args.rare_days} days ({count:,} trades):")
    zipped = archive_zip_bytes(tape, micros=False)
    print(f"  Binance daily zips (ms): {zipped / count:.2f} bytes/trade")
    with psycopg.connect(url) as conn:
        source = month_partition(conn, tape)
        heap, indexes, total, _ = conn.execute(SIZES_SQL).fetchone()  # type: ignore[misc]
        rollup = conn.execute("SELECT pg_total_relation_size('trade_minutes')").fetchone()[0]  # type: ignore[index]
        print(
            f"  row form: heap {heap / count:.1f} + indexes {indexes / count:.1f} = "
            f"{total / count:.1f} bytes/trade; rollup {rollup / count:.1f} (one row a minute)"
        )
        for layout in RARE_LAYOUTS:
            table = "rare_" + str(layout.block)
            conn.execute(f"DROP TABLE IF EXISTS {table}")
            conn.execute(create_sql(table, layout))
            conn.execute(build_sql(table, source, layout))
            conn.commit()
            conn.autocommit = True
            conn.execute(f"VACUUM ANALYZE {table}")
            conn.autocommit = False
            size = conn.execute(f"SELECT pg_total_relation_size('{table}')").fetchone()[0]  # type: ignore[index]
            rows = text_rows(f"SELECT {COLUMNS} FROM {source}")
            back = text_rows(decoded_sql(table, layout))
            differ = conn.execute(
                f"SELECT (SELECT count(*) FROM ({rows} EXCEPT ALL {back}) AS a)"
                f"     + (SELECT count(*) FROM ({back} EXCEPT ALL {rows}) AS b)"
            ).fetchone()[0]  # type: ignore[index]
            print(
                f"  {layout.name:<26} {size / count:7.1f} bytes/trade "
                f"(row form {total / count:.1f}), differ {differ}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a superuser URL; default: a throwaway server")
    parser.add_argument("--trades", type=int, default=1_000_000, help="busy symbol's trades")
    parser.add_argument("--days", type=int, default=1, help="days the busy trades span")
    parser.add_argument("--runs", type=int, default=200, help="`at` lookups per layout")
    parser.add_argument("--rare-days", type=int, default=30, help="days of the rare symbol")
    parser.add_argument(
        "--only", default="", help="layouts whose name holds one of these, |-separated"
    )
    parser.add_argument(
        "--no-verify",
        dest="verify",
        action="store_false",
        help="skip the trade-by-trade comparison",
    )
    parser.add_argument("--parts", default="busy,rare")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    began = time.perf_counter()
    with server(args.database_url, "postgres") as admin:
        with psycopg.connect(admin) as conn:
            print(conn.execute("SELECT version()").fetchone()[0])  # type: ignore[index]
        if "busy" in parts:
            busy_part(admin, args)
        if "rare" in parts:
            rare_part(admin, args)
    print(f"\n(total {time.perf_counter() - began:.0f} s; {tempfile.gettempdir()})")


if __name__ == "__main__":
    main()
