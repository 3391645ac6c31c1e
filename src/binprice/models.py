"""SQLAlchemy 2 models: the schema as Python, mirrored exactly by the Alembic revisions.

Product code never calls `create_all()`: schema changes go through `alembic/versions/`,
and a test compares these models with the migrated database so the two cannot drift.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Index,
    Integer,
    MetaData,
    Numeric,
    PrimaryKeyConstraint,
    SmallInteger,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, BIT, TIMESTAMP
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _market_column() -> Mapped[int]:
    """The market (`binprice.markets.Market.number`: 0 spot, 1 USD-M, 2 COIN-M; see 0012).

    Last in `trades`, where it fits the padding after `is_buyer_maker`; rows written before
    0012, and writers that name none, are spot."""
    return mapped_column(SmallInteger, nullable=False, server_default=text("0"))


def _kind_column() -> Mapped[int]:
    """The kind of series (`binprice.kinds.TradeKind.number`: 0 trades, 1 aggregate trades;
    see 0013). Rows written before 0013, and writers that name none, are of trades."""
    return mapped_column(SmallInteger, nullable=False, server_default=text("0"))


class TradeRow(Base):
    """A row of `trades`: one Binance trade as stored (the decoded frame is
    `exchange.protocol.WireTrade`, the trade a query returns `binprice.Trade`).

    Binance trade ids are per symbol of a market and consecutive, so `(market, symbol,
    trade_id)` identifies a trade. The table is partitioned by month of `timestamp` (see 0008),
    and a primary key of a partitioned table must contain the partition key, so the key is
    `(market, symbol, trade_id, timestamp)`: a trade's time never changes, so a re-delivered
    trade still collides with itself, in the same partition, and stays a no-op.

    The partitions (`trades_YYYY_MM`, `trades_default`) are made at run time by
    `binprice.db.partitions`, not declared here; the drift test leaves them out.
    """

    __tablename__ = "trades"

    symbol: Mapped[str] = mapped_column(Text)
    # Binance ids are past 2**32 (BTCUSDT passed 6.3e9 in 2026), hence BIGINT.
    trade_id: Mapped[int] = mapped_column(BigInteger)
    # Exact decimals, parsed from Binance's strings: never float.
    price: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    quantity: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    # The trade time `T` (matching engine), millisecond precision like Binance's.
    timestamp: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True, precision=3))
    is_buyer_maker: Mapped[bool] = mapped_column(Boolean, nullable=False)
    market: Mapped[int] = _market_column()

    __table_args__ = (
        PrimaryKeyConstraint("market", "symbol", "trade_id", "timestamp"),
        # Binance symbols are upper case; one spelling per symbol keeps the key unique.
        CheckConstraint("symbol = upper(symbol)", name="symbol_upper"),
        # The design's composite index: "what traded around time X" across symbols.
        Index("ix_trades_timestamp_symbol", text("timestamp DESC"), "symbol"),
        # Per-symbol lookups by time go through the rollup's per-minute id ranges and the
        # primary key: the covering (symbol, timestamp) index of 0002 was dropped by 0011.
        {"postgresql_partition_by": 'RANGE ("timestamp")'},
    )


#: Gap states: being fetched, fetched, absent on the exchange, left out (over --backfill-max).
GAP_STATES = ("open", "filled", "hole", "skipped")


class AggTradeRow(Base):
    """A row of `agg_trades` (see 0013): one Binance aggregate trade as stored (the decoded
    frame is `exchange.protocol.WireAggTrade`).

    Aggregate ids are per symbol of a market and consecutive, so `(market, symbol, agg_id)`
    identifies one; `first_trade_id`..`last_trade_id` are the trades it merges.
    """

    __tablename__ = "agg_trades"

    symbol: Mapped[str] = mapped_column(Text)
    agg_id: Mapped[int] = mapped_column(BigInteger)
    price: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    #: The merged trades' summed quantity.
    quantity: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    first_trade_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_trade_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: `T`: the time of the aggregate's trades.
    timestamp: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), nullable=False
    )
    is_buyer_maker: Mapped[bool] = mapped_column(Boolean, nullable=False)
    market: Mapped[int] = _market_column()

    __table_args__ = (
        PrimaryKeyConstraint("market", "symbol", "agg_id"),
        CheckConstraint("symbol = upper(symbol)", name="symbol_upper"),
        CheckConstraint("first_trade_id <= last_trade_id", name="trade_ids"),
        Index("ix_agg_trades_market_symbol_timestamp", "market", "symbol", "timestamp"),
    )


class Gap(Base):
    """A range of trade ids the ingestor found missing, and what became of it (see 0003)."""

    __tablename__ = "gaps"

    symbol: Mapped[str] = mapped_column(Text)
    first_id: Mapped[int] = mapped_column(BigInteger)
    last_id: Mapped[int] = mapped_column(BigInteger)
    detected_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), nullable=False, server_default=text("now()")
    )
    filled_at: Mapped[datetime | None] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), nullable=True
    )
    state: Mapped[str] = mapped_column(Text, nullable=False)
    market: Mapped[int] = _market_column()
    kind: Mapped[int] = _kind_column()

    __table_args__ = (
        PrimaryKeyConstraint("market", "kind", "symbol", "first_id", "last_id"),
        CheckConstraint("first_id <= last_id", name="range"),
        CheckConstraint("state IN ('open', 'filled', 'hole', 'skipped')", name="state_known"),
        # Start-up looks up the open gaps of the symbols it ingests.
        Index(
            "ix_gaps_open",
            "market",
            "kind",
            "symbol",
            "first_id",
            postgresql_where=text("state = 'open'"),
        ),
    )


class TradeMinute(Base):
    """Per-symbol, per-UTC-minute rollup of `trades`, kept exact by triggers (see 0004, 0005).

    `first_id`/`last_id` are the minute's lowest and highest trade id (a minute is whole iff
    `trades = last_id - first_id + 1`); `open`/`close` the prices of those two trades.
    """

    __tablename__ = "trade_minutes"

    symbol: Mapped[str] = mapped_column(Text)
    minute: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True))
    trades: Mapped[int] = mapped_column(BigInteger, nullable=False)
    volume: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    notional: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    high: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    low: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    first_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    last_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    open: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    close: Mapped[Decimal] = mapped_column(Numeric, nullable=False)
    market: Mapped[int] = _market_column()

    __table_args__ = (PrimaryKeyConstraint("market", "symbol", "minute"),)


class Checkpoint(Base):
    """Per symbol, the id through which completeness was verified at an ingest start (0006).

    Every id of the symbol up to `verified_through` is stored or inside a recorded gap.
    """

    __tablename__ = "checkpoints"

    symbol: Mapped[str] = mapped_column(Text)
    verified_through: Mapped[int] = mapped_column(BigInteger, nullable=False)
    verified_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), nullable=False, server_default=text("now()")
    )
    market: Mapped[int] = _market_column()
    kind: Mapped[int] = _kind_column()

    __table_args__ = (PrimaryKeyConstraint("market", "kind", "symbol"),)


#: Import states: some chunks committed (resume after `last_id`), or the whole file.
IMPORT_STATES = ("partial", "done")


class Import(Base):
    """One archive file `binprice import` loaded, and how far (see 0007)."""

    __tablename__ = "imports"

    #: The archive's file name, e.g. `BTCUSDT-trades-2024-01.zip` (symbol and period in it;
    #: the same name in every market, hence the key with the market).
    name: Mapped[str] = mapped_column(Text)
    symbol: Mapped[str] = mapped_column(Text, nullable=False)
    #: The UTC days the file covers, `[period_start, period_end)`.
    period_start: Mapped[date] = mapped_column(Date, nullable=False)
    period_end: Mapped[date] = mapped_column(Date, nullable=False)
    #: The checksum the file was verified against before any of its rows was committed.
    sha256: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    #: Rows of the file committed so far (all of them when `done`); `inserted` counts those
    #: that were new to `trades` (live capture or an earlier import may hold the others).
    rows: Mapped[int] = mapped_column(BigInteger, nullable=False)
    inserted: Mapped[int] = mapped_column(BigInteger, nullable=False)
    first_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    #: Where it was read from (URL or path).
    source: Mapped[str] = mapped_column(Text, nullable=False)
    imported_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), nullable=False, server_default=text("now()")
    )
    market: Mapped[int] = _market_column()
    kind: Mapped[int] = _kind_column()

    __table_args__ = (
        PrimaryKeyConstraint("market", "name"),
        CheckConstraint("state IN ('partial', 'done')", name="state_known"),
        CheckConstraint("period_start < period_end", name="period"),
        CheckConstraint("first_id <= last_id", name="ids"),
        # The planner reads a symbol's imported files by period.
        Index(
            "ix_imports_market_kind_symbol_period_start",
            "market",
            "kind",
            "symbol",
            "period_start",
        ),
    )


class Prune(Base):
    """Where `binprice db prune` cut the stored history off (see 0009).

    Every trade before `pruned_before` was dropped (whole monthly partitions of `trades`);
    the completeness check starts at the newest cut instead of reporting the months as holes.
    """

    __tablename__ = "prunes"

    pruned_before: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), primary_key=True
    )
    pruned_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), nullable=False, server_default=text("now()")
    )
    partitions: Mapped[int] = mapped_column(Integer, nullable=False)
    #: Counted from the rollup minutes of the dropped months (exact).
    trades: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The dropped partitions' size, indexes included.
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: Whether the rollup minutes of the dropped months were kept (`--keep-rollup`).
    rollup_kept: Mapped[bool] = mapped_column(Boolean, nullable=False)


class TradeBlockRow(Base):
    """A block of `trade_blocks` (see 0010): one symbol's trades of a closed month, as column
    arrays. `binprice.compressed.codec.Block` is the same row in Python (times as epoch ms) and
    `encode_blocks`/`decode_block` say what each column holds.

    The table is partitioned by UTC month of `first_ts`; the months (`trade_blocks_YYYY_MM`)
    are made by `binprice.db.blocks` when a month is compressed, not declared here.
    """

    __tablename__ = "trade_blocks"

    #: 0 spot, 1 USD-M futures, 2 COIN-M futures.
    market: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    symbol: Mapped[str] = mapped_column(Text, primary_key=True)
    #: The block's first trade's time (the partition key); `ms[0]` is 0.
    first_ts: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), primary_key=True
    )
    #: The lowest and highest trade id in the block.
    first_id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, nullable=False)
    trades: Mapped[int] = mapped_column(Integer, nullable=False)
    last_ts: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True, precision=3), nullable=False)
    #: The first trade's price times 10^price_scale.
    base_price: Mapped[int] = mapped_column(BigInteger, nullable=False)
    price_scale: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    qty_scale: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    #: The stored numerics' own number of decimals (8 from Binance), restored on reading.
    price_digits: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    qty_digits: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    #: Trade i's id minus `first_id`; NULL when it is `i` for every trade (consecutive ids).
    ids: Mapped[list[int] | None] = mapped_column(ARRAY(Integer), nullable=True)
    #: is_buyer_maker, bit i for trade i.
    side: Mapped[str] = mapped_column(BIT(varying=True), nullable=False)
    #: Milliseconds since the previous trade (the first: 0).
    ms: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False)
    #: Scaled price minus the previous trade's (the first: 0).
    price: Mapped[list[int]] = mapped_column(ARRAY(Integer), nullable=False)
    #: Scaled quantity.
    qty: Mapped[list[int]] = mapped_column(ARRAY(BigInteger), nullable=False)

    __table_args__ = (
        CheckConstraint("symbol = upper(symbol)", name="symbol_upper"),
        CheckConstraint("first_id <= last_id", name="ids"),
        CheckConstraint("trades > 0", name="trades"),
        {"postgresql_partition_by": "RANGE (first_ts)"},
    )


class CompressedMonth(Base):
    """A (market, UTC month) whose trades were compressed into `trade_blocks` (see 0010).

    Readers look here to know that a month has blocks; its row partition of `trades` then
    holds only late writes, until the next `db compress` merges them into the blocks.
    """

    __tablename__ = "compressed_months"

    market: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    month: Mapped[datetime] = mapped_column(TIMESTAMP(timezone=True, precision=3), primary_key=True)
    #: Trades in the month's blocks, as of the last compress.
    trades: Mapped[int] = mapped_column(BigInteger, nullable=False)
    blocks: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The month's partition of trade_blocks (heap, TOAST, index) after the last compress.
    bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    #: The row partition it replaced (heap, TOAST, indexes), as first compressed.
    row_bytes: Mapped[int] = mapped_column(BigInteger, nullable=False)
    compressed_at: Mapped[datetime] = mapped_column(
        TIMESTAMP(timezone=True, precision=3), nullable=False, server_default=text("now()")
    )
