"""`binprice demo`: the offline first try, in one step, apart from the user's real data."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.fault_helpers import needs_embedded


@needs_embedded
def test_demo_captures_from_a_local_exchange_into_its_own_data_directory(tmp_path: Path) -> None:
    env = {**os.environ, "BINPRICE_DATA_DIR": str(tmp_path), "COLUMNS": "100"}
    env.pop("BINPRICE_DATABASE_URL", None)
    env.pop("DATABASE_URL", None)
    done = subprocess.run(
        [sys.executable, "-m", "binprice", "demo", "--max-trades", "40", "--duration", "5m"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    # `latest` answered from the demo's capture, one line per symbol.
    lines = [line.split() for line in done.stdout.splitlines()]
    assert {line[0] for line in lines[1:]} == {"BTCUSDT", "ETHUSDT"}
    demo = tmp_path / "demo"
    assert f"BINPRICE_DATA_DIR={demo} binprice range BTCUSDT --last 1m" in done.stderr
    assert "binprice ingest" in done.stderr  # and how to capture the real exchange
    # The test market never goes beside real trades: the default data directory holds no
    # server, the demo's has one, and the demo stopped it.
    assert not (tmp_path / "pgdata").exists()
    info = subprocess.run(
        [sys.executable, "-m", "binprice", "db", "info"],
        env={**env, "BINPRICE_DATA_DIR": str(demo)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert info.returncode == 0, info.stderr
    state = {line.split(None, 1)[0]: line for line in info.stdout.splitlines() if line.strip()}
    assert "stopped" in state["state"]
    assert "MB" in state["cluster"]  # made, and kept for the next questions
