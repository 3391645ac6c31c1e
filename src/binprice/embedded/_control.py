"""Stopping the embedded server and describing it (`db stop`, `db info`); see the package."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

from binprice.embedded import _cluster, _layout, _pidfile, _start
from binprice.embedded._server import ServerInfo, server_on
from binprice.errors import EmbeddedServerError


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


def stop_server(data_dir: Path, *, mode: str = "fast") -> StopResult:
    """Stop the embedded server if it runs. A pid file naming a process that is not this server
    is removed, and that process left alone.

    `mode` is PostgreSQL's shutdown mode: `fast` (the default, clean) or `immediate` (a crash,
    used by the fault-injection tests).
    """
    pgdata = _layout.existing_cluster(data_dir)
    if pgdata is None:
        return StopResult(stopped=False)
    with _start.StartLock(data_dir):
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
    server = server_on(pgdata, private_only=False)
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
