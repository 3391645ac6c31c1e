"""Migrations: one head, every step up and down, no drift, and the catalog as designed."""

from __future__ import annotations

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from binprice.db import migrations
from binprice.db.schema import SCHEMA_HEAD
from binprice.models import Base, TradeRow


def _revisions_base_to_head() -> list[str]:
    script = ScriptDirectory.from_config(migrations.alembic_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


def _current(url: str) -> str | None:
    from binprice.db import connect, current_revision

    with connect(url) as conn:
        return current_revision(conn)


def test_migrations_have_a_single_head_equal_to_schema_head() -> None:
    """The shipped revisions have one head and SCHEMA_HEAD names it."""
    script = ScriptDirectory.from_config(migrations.alembic_config())
    assert script.get_heads() == [SCHEMA_HEAD]


def test_upgrade_and_downgrade_step_by_step(empty_database_url: str) -> None:
    """base → head → base → head, one revision at a time, ends at head with the table present."""
    revisions = _revisions_base_to_head()
    for rev in revisions:
        migrations.upgrade(empty_database_url, rev)
        assert _current(empty_database_url) == rev
    for expected in [*reversed(revisions[:-1]), None]:
        migrations.downgrade(empty_database_url, "-1")
        assert _current(empty_database_url) == expected
    with psycopg.connect(empty_database_url) as conn:
        assert conn.execute("SELECT to_regclass('trades')").fetchone() == (None,)
    for rev in revisions:
        migrations.upgrade(empty_database_url, rev)
    assert _current(empty_database_url) == SCHEMA_HEAD


def test_models_and_migrations_do_not_drift(database_url: str) -> None:
    """Alembic's autogenerate comparison finds nothing between the models and the database.

    The partitions of `trades` are made at run time (by month), not declared in the models, so
    they are left out of the comparison; the parent table, its key and indexes are compared,
    and its partitioning is checked against the model's `postgresql_partition_by` (which
    autogenerate does not compare)."""
    engine = create_engine(migrations.sqlalchemy_url(database_url), poolclass=NullPool)
    with engine.connect() as conn:
        partitions = {
            name
            for (name,) in conn.exec_driver_sql("SELECT relname FROM pg_class WHERE relispartition")
        }
        assert partitions  # the partitioned schema: default, this month and the months ahead

        def declared(name: str | None, type_: str, parents: object) -> bool:
            return not (type_ == "table" and name in partitions)

        context = MigrationContext.configure(conn, opts={"include_name": declared})
        diff = compare_metadata(context, Base.metadata)
        partition_key = conn.exec_driver_sql(
            "SELECT pg_get_partkeydef('trades'::regclass)"
        ).scalar()
    engine.dispose()
    assert diff == []
    assert partition_key == TradeRow.__table__.dialect_options["postgresql"]["partition_by"]


def test_trades_columns_read_back_from_pg_catalog(database_url: str) -> None:
    """Column types, nullability and order are exactly the designed ones."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            """
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull
            FROM pg_attribute a
            WHERE a.attrelid = 'trades'::regclass AND a.attnum > 0 AND NOT a.attisdropped
            ORDER BY a.attnum
            """
        ).fetchall()
    assert rows == [
        ("symbol", "text", True),
        ("trade_id", "bigint", True),
        ("price", "numeric", True),
        ("quantity", "numeric", True),
        ("timestamp", "timestamp(3) with time zone", True),
        ("is_buyer_maker", "boolean", True),
        ("market", "smallint", True),
    ]


def test_trades_primary_key_and_index_definitions(database_url: str) -> None:
    """PRIMARY KEY (market, symbol, trade_id, timestamp) (a partitioned table's key holds the
    partition key) and the B-tree index on (timestamp DESC, symbol), on the table partitioned
    by time."""
    with psycopg.connect(database_url) as conn:
        pk = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'trades'::regclass AND contype = 'p'"
        ).fetchall()
        index = conn.execute(
            "SELECT indexdef FROM pg_indexes "
            "WHERE tablename = 'trades' AND indexname = 'ix_trades_timestamp_symbol'"
        ).fetchone()
        key = conn.execute("SELECT pg_get_partkeydef('trades'::regclass)").fetchone()
    assert pk == [('PRIMARY KEY (market, symbol, trade_id, "timestamp")',)]
    assert index == (
        "CREATE INDEX ix_trades_timestamp_symbol ON ONLY public.trades "
        'USING btree ("timestamp" DESC, symbol)',
    )
    assert key == ('RANGE ("timestamp")',)


def test_symbol_must_be_upper_case(database_url: str) -> None:
    """A lower-case symbol is refused by the check constraint: one spelling per symbol."""
    with psycopg.connect(database_url) as conn:
        try:
            conn.execute("INSERT INTO trades VALUES ('btcusdt', 1, 1, 1, now(), true)")
        except psycopg.errors.CheckViolation:
            return
    raise AssertionError("lower-case symbol was accepted")


def test_concurrent_upgrades_serialise_on_the_advisory_lock(empty_database_url: str) -> None:
    """Two processes upgrading at once both succeed and leave one schema."""
    import subprocess
    import sys

    code = "import sys; from binprice.db import migrations; migrations.upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, empty_database_url]) for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert _current(empty_database_url) == SCHEMA_HEAD
