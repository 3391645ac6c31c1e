"""Spooled trades are their owner's alone: with --database-url the data directory, the spool and
its chunks are 0700/0600, and another OS user can neither list the spool nor read a chunk
(these tests need root to create a user and act as it; CI runs as root)."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from binprice.db.copy import CopyEncoder
from binprice.exchange.protocol import WireTrade
from binprice.ingest.spool import Spool, spool_root
from tests.test_embedded import as_user, os_user

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates an OS user and acts as it")

INTRUDER = "bp-test-intruder"
URL = "postgresql://ingest@db.example:5432/trades"


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_base() -> Iterator[Path]:
    """A directory anyone may list and enter, as a home directory often is."""
    base = Path(tempfile.mkdtemp(prefix="binprice-spool-"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def _chunk(spool: Spool) -> Path:
    trade = WireTrade("BTCUSDT", 1, Decimal("64000.5"), Decimal("0.1"), 1_700_000_000_000, True)
    return spool.append(CopyEncoder().batch([trade]))


def test_spool_with_a_database_url_is_private_to_its_owner(open_base: Path) -> None:
    """The data directory, spool directories and chunks binprice makes are 0700/0600 under a
    0022 umask, and another OS user is refused both the listing and the chunk."""
    os_user(INTRUDER)
    data_dir = open_base / "data"
    old_umask = os.umask(0o022)
    try:
        spool = Spool.open(spool_root(data_dir, URL))
        chunk = _chunk(spool)
    finally:
        os.umask(old_umask)
    try:
        made = [data_dir, data_dir / "spool", spool.directory.parent, spool.directory]
        assert {str(d): oct(_mode(d)) for d in made} == {str(d): "0o700" for d in made}
        assert oct(_mode(chunk)) == "0o600"
        listing = as_user(INTRUDER, "ls", str(spool.directory))
        assert listing.returncode != 0 and "Permission denied" in listing.stderr
        reading = as_user(INTRUDER, "cat", str(chunk))
        assert reading.returncode != 0 and "Permission denied" in reading.stderr
        assert "BTCUSDT" not in reading.stdout
    finally:
        spool.close()


def test_a_spool_an_earlier_version_left_open_is_closed_when_a_run_opens_it(
    open_base: Path,
) -> None:
    """A 0755 spool with a 0644 chunk (what earlier versions made): the next run makes the
    spool 0700 and the chunk it adopts 0600, so the intruder can read neither."""
    os_user(INTRUDER)
    root = spool_root(open_base / "data", URL)
    left = root / "run-1-dead"
    left.mkdir(parents=True, mode=0o755)
    for d in (open_base / "data", open_base / "data" / "spool", root, left):
        d.chmod(0o755)
    old = Spool(left, -1)
    chunk = _chunk(old)
    chunk.chmod(0o644)
    spool = Spool.open(root)
    try:
        assert spool.adopted_chunks == 1
        assert oct(_mode(root)) == "0o700"
        (adopted,) = spool.directory.glob("*.spool")
        assert oct(_mode(adopted)) == "0o600"
        reading = as_user(INTRUDER, "cat", str(adopted))
        assert reading.returncode != 0 and "Permission denied" in reading.stderr
    finally:
        spool.close()
