"""`binprice db …` through the real CLI process: embedded default, external URL, clear errors."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import psycopg
import pytest

from binprice import embedded
from binprice.cli import app
from binprice.db.schema import SCHEMA_HEAD
from tests.conftest import run_binprice
from tests.ingest_helpers import spawn_ingest


def test_every_command_has_help_text() -> None:
    """No command or group is registered without help."""
    group = app

    def walk(cmd: object, path: str) -> list[str]:
        missing = [] if getattr(cmd, "help", None) else [path]
        for name, sub in getattr(cmd, "commands", {}).items():
            missing += walk(sub, f"{path} {name}")
        return missing

    assert walk(group, "binprice") == []


def test_db_upgrade_current_downgrade_on_external_url(
    empty_database_url: str, clean_env: dict[str, str]
) -> None:
    """--database-url: upgrade to head, current says head, downgrade base removes the table."""
    url = empty_database_url
    fresh = run_binprice("--database-url", url, "db", "current", env=clean_env)
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("base")
    up = run_binprice("--database-url", url, "db", "upgrade", env=clean_env)
    assert up.returncode == 0, up.stderr
    current = run_binprice("--database-url", url, "db", "current", env=clean_env)
    assert current.stdout.strip() == f"{SCHEMA_HEAD} (head)"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('trades')::text").fetchone() == ("trades",)
    down = run_binprice("--database-url", url, "db", "downgrade", "base", "--yes", env=clean_env)
    assert down.returncode == 0, down.stderr
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT to_regclass('trades')").fetchone() == (None,)
    again = run_binprice("--database-url", url, "db", "current", env=clean_env)
    assert again.stdout.startswith("base")


def test_env_var_and_postgres_scheme_are_accepted(
    empty_database_url: str, clean_env: dict[str, str]
) -> None:
    """BINPRICE_DATABASE_URL in the environment, written as postgres://, is used as is."""
    env = clean_env | {
        "BINPRICE_DATABASE_URL": empty_database_url.replace("postgresql", "postgres")
    }
    result = run_binprice("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    history = run_binprice("db", "history", env=env)
    assert f"-> {SCHEMA_HEAD} (head, current)" in history.stdout


def test_embedded_default_in_an_empty_directory(
    reachable_tmp: Path, clean_env: dict[str, str]
) -> None:
    """No configuration: `db info` says there is no server yet; the embedded server starts
    (saying it keeps running), migrates, is reused, `db info` shows its state, and it stops on
    request; then `db info` says stopped, without starting it."""
    data = reachable_tmp / "data"
    env = clean_env | {"BINPRICE_DATA_DIR": str(data)}
    before = run_binprice("db", "info", env=env, cwd=reachable_tmp)
    assert "not created yet" in before.stdout and not data.exists()  # looking creates nothing
    try:
        up = run_binprice("db", "upgrade", env=env, cwd=reachable_tmp)
        assert up.returncode == 0, up.stderr
        assert "started the embedded PostgreSQL server" in up.stderr
        assert "`binprice db stop`" in up.stderr
        info = embedded.running_server(data)
        assert info is not None
        current = run_binprice("db", "current", env=env, cwd=reachable_tmp)
        assert current.stdout.strip() == f"{SCHEMA_HEAD} (head)"
        assert "started" not in current.stderr  # said once, by the command that started it
        assert embedded.running_server(data) == info  # reused
        details = run_binprice("db", "info", env=env, cwd=reachable_tmp)
        assert "embedded server" in details.stdout and "PostgreSQL 18" in details.stdout
        assert f"running, pid {info.pid}" in details.stdout
        assert f"socket dir     {info.socket_dir}" in details.stdout
        assert f"cluster        {info.pgdata} (" in details.stdout
        assert details.stdout.splitlines()[-1].split() == ["trades", "0"]
    finally:
        stop = run_binprice("db", "stop", env=env, cwd=reachable_tmp)
    assert stop.returncode == 0
    assert stop.stderr.strip() == "embedded PostgreSQL stopped"
    assert embedded.running_server(data) is None
    stopped = run_binprice("db", "info", env=env, cwd=reachable_tmp)
    assert stopped.returncode == 0, stopped.stderr
    assert "stopped (`binprice db start` starts it" in stopped.stdout
    assert embedded.running_server(data) is None  # `db info` did not start it
    again = run_binprice("db", "stop", env=env, cwd=reachable_tmp)
    assert again.stderr.strip() == "embedded PostgreSQL was not running"


def test_db_downgrade_takes_a_relative_revision_and_asks_before_base(
    database_url: str, clean_env: dict[str, str]
) -> None:
    """`db downgrade -1` needs no `--`; `base` without --yes off a terminal is refused in one
    line and changes nothing; with --yes it drops the tables."""
    step = run_binprice("--database-url", database_url, "db", "downgrade", "-1", env=clean_env)
    assert step.returncode == 0, step.stderr
    with psycopg.connect(database_url) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone() or ("",)
    assert revision != SCHEMA_HEAD
    refused = run_binprice("--database-url", database_url, "db", "downgrade", "base", env=clean_env)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [refused.stderr.strip()]
    assert "--yes" in refused.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('trades')::text").fetchone() == ("trades",)
    bogus = run_binprice(
        "--database-url", database_url, "db", "downgrade", "--bogus", env=clean_env
    )
    assert bogus.returncode == 2 and "no such option: --bogus" in bogus.stderr
    down = run_binprice(
        "--database-url", database_url, "db", "downgrade", "-y", "base", env=clean_env
    )
    assert down.returncode == 0, down.stderr
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT to_regclass('trades')").fetchone() == (None,)


def _password_forms(url: str) -> dict[str, str]:
    """The session database `url` with the password hunter2 written every way libpq takes it."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    socket, port, database = query["host"][0], query["port"][0], parts.path.lstrip("/")
    keywords = f"host={socket} port={port} user=postgres dbname={database}"
    return {
        "userinfo": url.replace("postgresql://postgres@", "postgresql://postgres:hunter2@"),
        "query": f"{url}&password=hunter2",
        "query-encoded-key": f"{url}&passw%6Frd=hunter2",
        "keyword": f"{keywords} password=hunter2",
        "keyword-quoted": f"{keywords} password='hunter2 x'",
    }


def test_db_info_masks_every_password_form(database_url: str, clean_env: dict[str, str]) -> None:
    """`db info` connects with the URL as given (keyword/value strings too) and shows it without
    its password, whichever way the password was written."""
    forms = _password_forms(database_url)
    results = _run_together(
        *[["--database-url", url, "db", "info"] for url in forms.values()], env=clean_env
    )
    for form, (code, out, errors) in zip(forms, results, strict=True):
        assert code == 0, (form, errors)
        assert "hunter2" not in out + errors, form
        assert "***" in out and SCHEMA_HEAD in out, form


def test_errors_mask_every_password_form(tmp_path: Path, clean_env: dict[str, str]) -> None:
    """Against a refused port, commands fail in one line without the password, however it was
    given (flag in each form, or the original design's .env), on every path: psycopg (db info),
    Alembic/SQLAlchemy (db upgrade), ingest."""
    refused = _password_forms("postgresql://postgres@/x?host=127.0.0.1&port=9")
    dotenv_dir = tmp_path / "dotenv"
    dotenv_dir.mkdir()
    (dotenv_dir / ".env").write_text(
        "POSTGRES_USER=bob\nPOSTGRES_PASSWORD=hunter2\nDB_HOST=127.0.0.1\nDB_PORT=9\n"
    )
    hardest = ["--database-url", refused["keyword-quoted"]]
    cases = [
        *(["--database-url", refused[form], "db", "info"] for form in ("userinfo", "query")),
        [*hardest, "db", "info"],
        [*hardest, "db", "upgrade"],
        [*hardest, "ingest", "--max-trades", "1"],
    ]
    results = _run_together(*cases, env=clean_env, cwd=tmp_path)
    cases.append(["db", "info"])
    results += _run_together(["db", "info"], env=clean_env, cwd=dotenv_dir)
    for argv, (code, out, errors) in zip(cases, results, strict=True):
        assert code == 1, (argv, errors)
        assert len(errors.strip().splitlines()) == 1, (argv, errors)
        assert "127.0.0.1" in errors
        assert "hunter2" not in out + errors, argv


def _run_together(
    *argvs: list[str], env: dict[str, str], cwd: Path | None = None
) -> list[tuple[int, str, str]]:
    """Run several `binprice` processes at once; (exit code, stdout, stderr) of each."""
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True}
    runs = [
        subprocess.Popen([sys.executable, "-m", "binprice", *argv], env=env, cwd=cwd, **pipes)
        for argv in argvs
    ]
    # The bound is the test's own patience, not a timing assertion: a hang fails here.
    outputs = [run.communicate(timeout=120) for run in runs]
    return [(run.returncode, out, errors) for run, (out, errors) in zip(runs, outputs, strict=True)]


@pytest.mark.slow
def test_a_server_that_never_answers_fails_within_the_connect_timeout(
    clean_env: dict[str, str],
) -> None:
    """A socket that accepts TCP connections and never answers: `db upgrade` (Alembic and
    SQLAlchemy) and `db current` (psycopg) each give up with one line instead of hanging."""
    with socket.create_server(("127.0.0.1", 0)) as silent:  # listens, never accepts or answers
        url = f"postgresql://bob:hunter2@127.0.0.1:{silent.getsockname()[1]}/x"
        results = _run_together(
            ["--database-url", url, "db", "upgrade"],
            ["--database-url", url, "db", "current"],
            env=clean_env,
        )
    for code, _out, errors in results:
        assert code == 1, errors
        assert len(errors.strip().splitlines()) == 1, errors
        assert "timeout" in errors and "hunter2" not in errors


@pytest.mark.parametrize(
    ("url", "names"),
    [
        ("postgresql://bob:hunter2@127.0.0.1:9/prices", "127.0.0.1:9"),
        ("postgresql://bob:hunter2@no-such-host.invalid:5432/prices", "no-such-host.invalid:5432"),
        ("postgresql://bob:hunter2@127.0.0.1:70000/prices", "127.0.0.1:70000"),
        ("mysql://bob:hunter2@127.0.0.1:3306/prices", "127.0.0.1:3306"),
    ],
    ids=["refused-port", "unknown-host", "malformed-port", "wrong-scheme"],
)
def test_bad_database_gives_one_line_error(url: str, names: str, clean_env: dict[str, str]) -> None:
    """One line on stderr naming host and port, password masked, non-zero exit, no traceback."""
    result = run_binprice("--database-url", url, "db", "current", env=clean_env)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert names in lines[0]
    assert "hunter2" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("argv", "loaded"),
    [
        (["latest", "--help"], ["_queries"]),
        (["--database-url", "postgresql://h/db", "at", "--help"], ["_queries"]),
        (["--database-url=postgresql://h/db", "db", "current", "--help"], ["_db"]),
        (["--version"], []),
    ],
    ids=["plain", "global-option-value", "global-option-equals", "version"],
)
def test_only_the_invoked_commands_module_is_imported(argv: list[str], loaded: list[str]) -> None:
    """The root group imports a command's module when it is looked up, past --database-url."""
    code = (
        "import sys\n"
        "from binprice.cli._app import app\n"
        f"app.main({argv!r}, standalone_mode=False)\n"
        "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
        "             if m.startswith('binprice.cli._') and m != 'binprice.cli._app'))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-1] == repr(loaded)


def test_main_runs_a_command_with_only_its_group_registered(clean_env: dict[str, str]) -> None:
    """`binprice db current` works in a fresh process that loads only the db group."""
    result = run_binprice(
        "--database-url", "postgresql://u:p@127.0.0.1:9/x", "db", "current", env=clean_env
    )
    assert result.returncode == 1 and result.stderr.startswith("error: cannot reach PostgreSQL")


async def test_an_unwritable_spool_directory_is_one_line_and_the_run_goes_on(
    database_url: str, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """The ingest spool cannot be made (a file is where its directory goes, as a read-only or
    unwritable data directory would refuse): one line naming the path, no traceback, and the
    run goes on without a spool (what cannot be committed in time becomes recorded gaps)."""
    from binprice.testing.exchange import TestExchange

    (tmp_path / "spool").write_text("not a directory")
    env = clean_env | {"BINPRICE_DATA_DIR": str(tmp_path)}
    async with TestExchange(["BTCUSDT"], seed=3, rate=10) as ex:
        proc = await spawn_ingest(
            database_url,
            *("BTCUSDT", "--max-trades", "5", "--log-format", "plain"),
            ws_url=ex.ws_url,
            rest_url=ex.rest_url,
            env=env,
        )
        _, errors = await asyncio.wait_for(proc.communicate(), 60)
    text = errors.decode()
    assert proc.returncode == 0, text
    assert "Traceback" not in text
    (line,) = [x for x in text.splitlines() if "cannot create the spool" in x]
    assert str(tmp_path / "spool") in line and "running without a spool" in line
    assert "stored 5 trades" in text
