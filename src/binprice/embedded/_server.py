"""A running embedded server, found from its `postmaster.pid` without starting anything: the
fast path of every query command, so it imports nothing heavy (no subprocess, no psycopg)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from binprice.embedded import _layout, _pidfile

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


def cluster_dir(data_dir: Path) -> Path | None:
    """Where the cluster of `data_dir` is, or None if none has been made."""
    return _layout.existing_cluster(data_dir)


def running_server(data_dir: Path) -> ServerInfo | None:
    """The embedded server of `data_dir` if it runs and is ready. Cheap: no subprocess."""
    pgdata = _layout.existing_cluster(data_dir)
    return None if pgdata is None else server_on(pgdata)


def server_on(pgdata: Path, *, private_only: bool = True) -> ServerInfo | None:
    """The ready server of the cluster `pgdata`, or None. `private_only`: None also for a
    server started by an older binprice (socket in a shared directory): the slow path restarts
    it with the private socket."""
    found = _pidfile.read(pgdata)
    if found is None or found.standalone or found.status != _pidfile.READY or not found.port:
        return None
    socket_dir = Path(found.socket_dir) if found.socket_dir else pgdata
    private = socket_dir == _layout.socket_dir(pgdata) and not found.listen
    if (private_only and not private) or not _pidfile.is_this_server(found.pid, pgdata):
        return None
    return ServerInfo(pid=found.pid, pgdata=pgdata, port=found.port, socket_dir=socket_dir)


def running_notice(info: ServerInfo) -> str:
    """One line for the user: the server runs, keeps running, and how to stop it."""
    what = (
        "started the embedded PostgreSQL server"
        if info.started
        else "the embedded PostgreSQL server is running"
    )
    return (
        f"{what} (pid {info.pid}, data in {info.pgdata}); it keeps running after binprice "
        "exits — `binprice db stop` stops it"
    )
