"""The artefact users install: the built wheel, in a clean venv, run outside the repo."""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from binprice.db.schema import SCHEMA_HEAD

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True,
        capture_output=True,
    )
    (built,) = out.glob("binprice-*.whl")
    return built


def test_wheel_ships_migrations_and_type_marker(wheel: Path) -> None:
    """Alembic's env.py and every revision are inside the wheel, with py.typed."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "binprice/alembic/env.py" in names
    assert "binprice/py.typed" in names
    shipped = {Path(n).name for n in names if n.startswith("binprice/alembic/versions/")}
    in_repo = {p.name for p in (REPO / "alembic" / "versions").glob("*.py")}
    assert in_repo <= shipped


@pytest.mark.slow
def test_installed_wheel_migrates_from_outside_the_repo(
    wheel: Path, reachable_tmp: Path, empty_database_url: str, clean_env: dict[str, str]
) -> None:
    """pip install <wheel> into a fresh venv; `binprice db upgrade/current` work from /tmp.

    The venv and the data directory live where an embedded server may run even as root (not
    under pytest's 0700 temporary root), as they would in a user's home."""
    tmp_path = reachable_tmp
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    pip = env_dir / "bin" / "pip"
    subprocess.run(
        [str(pip), "install", "-q", "--disable-pip-version-check", str(wheel)],
        check=True,
        capture_output=True,
    )
    binprice = str(env_dir / "bin" / "binprice")
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = {k: v for k, v in clean_env.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["BINPRICE_DATA_DIR"] = str(tmp_path / "data")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [binprice, *args], capture_output=True, text=True, env=env, cwd=workdir, timeout=180
        )

    up = run("--database-url", empty_database_url, "db", "upgrade")
    assert up.returncode == 0, up.stderr
    assert run("--database-url", empty_database_url, "db", "current").stdout.startswith(SCHEMA_HEAD)
    try:
        assert run("db", "upgrade").returncode == 0  # the embedded server, from the wheel's venv
        current = run("db", "current")
        assert current.stdout.strip() == f"{SCHEMA_HEAD} (head)", current.stderr
    finally:
        run("db", "stop")
