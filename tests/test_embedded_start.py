"""Starting the embedded server survives everything: a first start killed at any step leaves no
broken cluster, a stale pid file naming an unrelated live process is seen for what it is (and
that process never signalled), and a server on a shared socket is moved to the private one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from binprice import embedded
from binprice.embedded import _account, _binaries, _cluster, _layout
from tests.conftest import run_binprice

#: A step of the first start, run in a child process that then dies as if the power went out.
STEPS = """
import os, signal, sys
from pathlib import Path
from binprice.embedded import _account, _binaries, _cluster
pgdata, last = Path(sys.argv[1]), sys.argv[2]
account = _account.for_cluster(None)
bin_dir = _binaries.bin_dir_for(account)
partial = _cluster.new_partial(pgdata, account)
print(partial, flush=True)
_cluster.initdb(partial, account, bin_dir)
_cluster.write_access_rules(partial, account, _account.current().name)
if last == "rules":
    sys.exit(0)
_cluster.create_database(partial, account, bin_dir)
os.kill(os.getpid(), signal.SIGKILL)  # just before the rename
"""
WAIT_SLICE_SECONDS = 0.001
ENSURE = (
    "import sys; from pathlib import Path; from binprice import embedded; "
    "embedded.ensure_server(Path(sys.argv[1]))"
)


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    """Until `condition` (a file appeared) holds, waiting on `process` in between; fails if it
    ends first."""
    while not condition():
        try:
            process.wait(timeout=WAIT_SLICE_SECONDS)
        except subprocess.TimeoutExpired:
            continue
        pytest.fail(f"the process ended (exit {process.returncode}) before the condition held")


def partials(pgdata: Path) -> list[Path]:
    return sorted(pgdata.parent.glob(f"{pgdata.name}{_cluster.PARTIAL_INFIX}*"))


@pytest.mark.slow
def test_a_first_start_killed_at_any_step_never_leaves_a_broken_cluster(
    reachable_tmp: Path, clean_env: dict[str, str]
) -> None:
    """SIGKILL of the whole process group during initdb, of the process after the database was
    created but before the rename, and of the single-user backend creating the database: each
    leaves no cluster in place, and the next command builds a whole one and answers a query."""
    data = reachable_tmp / "data"
    pgdata = data / "pgdata"
    env = clean_env | {"BINPRICE_DATA_DIR": str(data)}

    # 1. During initdb: Ctrl+C or a closed terminal takes the whole process group.
    first = subprocess.Popen([sys.executable, "-c", ENSURE, str(data)], start_new_session=True)
    wait_for(lambda: any((p / "PG_VERSION").exists() for p in partials(pgdata)), first)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not pgdata.exists()

    # 2. After the database was made, just before the rename.
    second = subprocess.run(
        [sys.executable, "-c", STEPS, str(pgdata), "database"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert second.returncode == -signal.SIGKILL, second.stderr
    assert (Path(second.stdout.strip()) / "base").is_dir()
    assert not pgdata.exists()

    # 3. While the single-user backend that creates the database runs.
    third = subprocess.run(
        [sys.executable, "-c", STEPS, str(pgdata), "rules"],
        capture_output=True,
        text=True,
        check=True,
    )
    partial = Path(third.stdout.strip())
    account = _account.for_cluster(None)
    backend = subprocess.Popen(
        [
            str(_binaries.bin_dir_for(account) / "postgres"),
            "--single",
            "-D",
            str(partial),
            "postgres",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
        **account.run_options(),
    )
    assert backend.stdin is not None
    backend.stdin.write(f'CREATE DATABASE "{embedded.EMBEDDED_DATABASE}";\n'.encode())
    backend.stdin.flush()
    wait_for(lambda: (partial / "postmaster.pid").exists(), backend)
    backend.kill()
    backend.wait()
    backend.stdin.close()
    assert not pgdata.exists()

    try:
        up = run_binprice("db", "upgrade", env=env)
        assert up.returncode == 0, up.stderr
        info = embedded.running_server(data)
        assert info is not None
        with psycopg.connect(info.url()) as conn:
            conn.execute("INSERT INTO trades VALUES ('BTCUSDT', 1, 64000.5, 1, now(), true)")
        latest = run_binprice("latest", "BTCUSDT", env=env)
        assert latest.returncode == 0, latest.stderr
        assert "64000.5" in latest.stdout
        assert partials(pgdata) == []
    finally:
        embedded.stop_server(data)


needs_embedded = pytest.mark.skipif(
    bool(os.environ.get("BINPRICE_TEST_DATABASE_URL")),
    reason="stops and restarts the session's embedded server",
)


@pytest.fixture
def stopped_cluster(pg_admin_url: str, pg_data_dir: Path) -> Iterator[Path]:
    """The session's own embedded server, stopped for the test and running again afterwards
    (at the same socket: the session's URLs stay good). Saves making a cluster."""
    embedded.stop_server(pg_data_dir)
    try:
        yield pg_data_dir
    finally:
        embedded.ensure_server(pg_data_dir)


def write_stale_pid_files(pgdata: Path, pid: int) -> None:
    """What a reboot leaves: a 'ready' pid file and a socket lock naming a pid now reused."""
    socket_dir = _layout.socket_dir(pgdata)
    (pgdata / "postmaster.pid").write_text(
        f"{pid}\n{pgdata}\n1700000000\n5432\n{socket_dir}\n\n  1234  5678\nready   \n"
    )
    (socket_dir / ".s.PGSQL.5432.lock").write_text(f"{pid}\n{pgdata}\n1700000000\n5432\n")


@needs_embedded
def test_a_stale_pid_file_naming_a_live_process_is_recognised_and_left_alone(
    stopped_cluster: Path, clean_env: dict[str, str]
) -> None:
    """The pid in postmaster.pid is a live `sleep`, or this very test: no command takes it for
    the server; `db stop` cleans up and says it was not running; `db start` starts the real
    server; the process named is never signalled."""
    pgdata = embedded.cluster_dir(stopped_cluster)
    assert pgdata is not None
    env = clean_env | {"BINPRICE_DATA_DIR": str(stopped_cluster)}
    with subprocess.Popen(["sleep", "600"]) as bystander:  # SIGINT, SIGTERM or SIGQUIT end it
        try:
            for pid in (bystander.pid, os.getpid()):
                write_stale_pid_files(pgdata, pid)
                assert embedded.running_server(stopped_cluster) is None
                stop = run_binprice("db", "stop", env=env)
                assert stop.returncode == 0, stop.stderr
                assert "was not running" in stop.stderr and f"pid {pid} is another" in stop.stderr
                assert not (pgdata / "postmaster.pid").exists()
            write_stale_pid_files(pgdata, bystander.pid)
            start = run_binprice("db", "start", env=env)
            assert start.returncode == 0, start.stderr
            assert "started the embedded PostgreSQL server" in start.stderr
            info = embedded.running_server(stopped_cluster)
            assert info is not None and info.pid != bystander.pid
            assert run_binprice("db", "current", env=env).returncode == 0
            assert bystander.poll() is None  # never signalled
        finally:
            bystander.kill()


@needs_embedded
def test_a_server_on_a_shared_socket_is_restarted_on_the_private_one(
    stopped_cluster: Path,
) -> None:
    """A server an older binprice started with its socket in a shared directory is not used as
    it is: the next start stops it and starts it again on the private socket."""
    pgdata = embedded.cluster_dir(stopped_cluster)
    assert pgdata is not None
    account = _account.for_cluster(pgdata)
    shared = stopped_cluster.parent / "shared"  # the server's user may reach it
    shared.mkdir(exist_ok=True)
    shared.chmod(0o1777)
    bin_dir = _binaries.bin_dir_for(account)
    try:
        _cluster.start(pgdata, account, bin_dir, shared)
        assert (shared / ".s.PGSQL.5432").exists()
        assert embedded.running_server(stopped_cluster) is None  # not taken as it is
        info = embedded.ensure_server(stopped_cluster)
        assert info.started and info.socket_dir == _layout.socket_dir(pgdata)
        assert not (shared / ".s.PGSQL.5432").exists()
    finally:
        embedded.stop_server(stopped_cluster)
        shared.rmdir()
