"""`postmaster.pid`, and whether the process it names really is this cluster's server.

On the fast path of every query command: reads one small file and two `/proc` links.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

PID_FILE = "postmaster.pid"
READY = "ready"
_PROC = Path("/proc")


class PidFile(NamedTuple):
    """What `postmaster.pid` says. Layout (PostgreSQL's miscadmin.h): pid, data directory, start
    time, port, socket directory, listen address, shared memory key, status. A single-user
    backend writes its pid negated; a starting server has not written every line yet.
    A NamedTuple, not a dataclass: it is built on the fast path, and its class costs a tenth."""

    pid: int
    port: int | None
    socket_dir: str
    listen: str
    status: str

    @property
    def standalone(self) -> bool:
        """A single-user backend (`postgres --single`), not a server."""
        return self.pid < 0


def read(pgdata: Path) -> PidFile | None:
    """The pid file of `pgdata`, or None when there is none or it names no pid."""
    try:
        lines = (pgdata / PID_FILE).read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError, PermissionError, UnicodeDecodeError):
        return None
    fields = [line.strip() for line in lines] + [""] * 8
    try:
        pid = int(fields[0])
    except ValueError:
        return None
    port = int(fields[3]) if fields[3].isdigit() else None
    return PidFile(pid=pid, port=port, socket_dir=fields[4], listen=fields[5], status=fields[7])


def is_this_server(pid: int, pgdata: Path) -> bool:
    """Whether process `pid` is a PostgreSQL process working on `pgdata` (an absolute, resolved
    path) — not merely alive: after a reboot or a container restart the pid in a stale pid file
    often belongs to an unrelated process, which must never be taken for the server (or signalled).

    PostgreSQL changes its working directory to its data directory, so `/proc/<pid>/cwd` says it.
    Reading that link needs ptrace rights over the process, which root lacks in a container
    without CAP_SYS_PTRACE; then the command line (readable by all) must show `postgres -D
    <pgdata>`. Without /proc (macOS) only liveness can be checked cheaply.
    """
    pid = abs(pid)
    if not _PROC.is_dir():  # pragma: no cover - not Linux
        return _alive(pid)
    try:
        return os.readlink(_PROC / str(pid) / "cwd") == str(pgdata)
    except (FileNotFoundError, ProcessLookupError):
        return False  # gone, or a zombie
    except PermissionError:
        return _command_line_names(pid, pgdata)


def _command_line_names(pid: int, pgdata: Path) -> bool:
    try:
        args = (_PROC / str(pid) / "cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    if not args or os.path.basename(args[0]) != "postgres" or "-D" not in args[:-1]:
        return False
    return args[args.index("-D") + 1] == str(pgdata)


def _alive(pid: int) -> bool:  # pragma: no cover - not Linux
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
