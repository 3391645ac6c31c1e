"""Starting the embedded server, the start lock held: where a new cluster goes, what a pid file
found there means (a server starting, ready, on an old shared socket, or stale), making the
cluster, and its `binprice` database."""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from binprice.embedded import _account, _binaries, _cluster, _layout, _pidfile
from binprice.embedded._server import EMBEDDED_DATABASE, LOCK_NAME, ServerInfo, server_on
from binprice.errors import EmbeddedServerError

SETTLE_TIMEOUT_SECONDS = 60
_SETTLE_POLL_SECONDS = 0.05
#: Data directories binprice creates: private for a user; searchable when root's server user
#: must pass through them.
USER_DIR_MODE = 0o700
ROOT_DIR_MODE = 0o755


def start_server(data_dir: Path) -> ServerInfo:
    """The embedded server of `data_dir`, started (and its cluster made) if it is not running:
    the slow path of `ensure_server`, under the start lock."""
    root = os.geteuid() == 0
    _layout.make_dirs(data_dir, ROOT_DIR_MODE if root else USER_DIR_MODE)
    with StartLock(data_dir):
        return ensure_locked(data_dir.resolve(), root)


def ensure_locked(data_dir: Path, root: bool) -> ServerInfo:
    """`start_server` once it holds the start lock; `data_dir` exists and is resolved."""
    pgdata = _layout.existing_cluster(data_dir)
    if pgdata is not None and not (pgdata / "PG_VERSION").is_file():
        _discard_non_cluster(pgdata)
        pgdata = None
    account = _account.for_cluster(pgdata)
    if pgdata is None:
        pgdata = (
            _new_location(data_dir, account.uid, account.gid)
            if root
            else _layout.in_place(data_dir)
        )
    _cluster.check_path(pgdata)
    if root and (blocked := _layout.unsearchable(pgdata.parent, account.uid, {account.gid})):
        raise EmbeddedServerError(
            f"the embedded server's user {account.name} cannot reach {pgdata}: {blocked} is "
            f"closed to it (mode {blocked.stat().st_mode & 0o777:o}); allow others to search it "
            "(chmod o+x), set BINPRICE_DATA_DIR elsewhere, or pass --database-url"
        )
    running = _settle(pgdata)
    if running is not None:
        return running
    bin_dir = _binaries.bin_dir_for(account)
    client = _account.current().name
    if not pgdata.exists():
        _layout.make_dirs(pgdata.parent, ROOT_DIR_MODE if root else USER_DIR_MODE)
        pgdata = pgdata.parent.resolve() / pgdata.name  # /proc shows the server's real path
        if pgdata.parent != data_dir:
            _name_owner(pgdata.parent, data_dir)
        _cluster.create(pgdata, account, bin_dir, client)
    else:
        _cluster.write_access_rules(pgdata, account, client)
    socket_dir = _layout.socket_dir(pgdata)
    if socket_dir != pgdata:
        _layout.make_private_dir(socket_dir, account.uid, account.gid)
    _cluster.start(pgdata, account, bin_dir, socket_dir)
    info = server_on(pgdata)
    if info is None:
        raise EmbeddedServerError(
            f"the embedded PostgreSQL server in {pgdata} is not running after start; "
            f"see its log {pgdata / _cluster.LOG_NAME}"
        )
    _ensure_database(info)
    return replace(info, started=True)


def _name_owner(cluster_parent: Path, data_dir: Path) -> None:
    """A relocated cluster says whose it is, for the administrator looking at /var/lib."""
    try:
        (cluster_parent / "data-dir").write_text(f"{data_dir}\n")
    except OSError as exc:
        raise _layout.unwritable(cluster_parent, exc) from None


def _new_location(data_dir: Path, uid: int, gid: int) -> Path:
    if _layout.unsearchable(data_dir, uid, {gid}) is None:
        return _layout.in_place(data_dir)
    return _layout.system_cluster(data_dir)


def _settle(pgdata: Path) -> ServerInfo | None:
    """Deal with whatever `postmaster.pid` names, the start lock held: a ready private server is
    returned; one still starting or stopping is waited for; one an older binprice started with a
    shared socket is stopped (to be started privately); a pid that is not this server is stale."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
    while (found := _pidfile.read(pgdata)) is not None:
        if not _pidfile.is_this_server(found.pid, pgdata):
            clear_stale(pgdata, found)
            return None
        if found.standalone:
            raise EmbeddedServerError(
                f"the embedded cluster {pgdata} is in use by a single-user postgres "
                f"(pid {-found.pid}); end it first"
            )
        if found.status == _pidfile.READY:
            info = server_on(pgdata)
            if info is not None:
                return info  # another process started it while we waited for the lock
            _cluster.stop(pgdata, found.pid, "fast")
            continue
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                f"the embedded server (pid {found.pid}) is still {found.status or 'starting'} "
                f"after {SETTLE_TIMEOUT_SECONDS} s; see its log {pgdata / _cluster.LOG_NAME}"
            )
        time.sleep(_SETTLE_POLL_SECONDS)
    return None


def clear_stale(pgdata: Path, found: _pidfile.PidFile) -> None:
    """Remove the pid file (and socket locks) naming `found`, a process that is not this server."""
    candidates = [_layout.socket_dir(pgdata)]
    if found.socket_dir:
        candidates.append(Path(found.socket_dir))
    _cluster.clear_stale(pgdata, found, candidates)


def _discard_non_cluster(pgdata: Path) -> None:
    """`pgdata` exists without PG_VERSION: empty directories left by an interrupted start of an
    older binprice are removed; anything holding files is not binprice's to delete."""
    for _directory, _dirs, files in os.walk(pgdata):
        if files:
            raise EmbeddedServerError(
                f"{pgdata} exists but is not a PostgreSQL cluster (no PG_VERSION); "
                "move it away or delete it, and binprice will make a new one"
            )
    shutil.rmtree(pgdata)


def _ensure_database(info: ServerInfo) -> None:
    import psycopg

    try:
        with psycopg.connect(info.url("postgres"), autocommit=True, connect_timeout=10) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (EMBEDDED_DATABASE,)
            ).fetchone()
            if exists is None:
                conn.execute(f'CREATE DATABASE "{EMBEDDED_DATABASE}"')
    except psycopg.errors.InvalidCatalogName:
        raise EmbeddedServerError(
            f"the embedded cluster {info.pgdata} is incomplete (an older binprice's first start "
            "was interrupted) and holds no binprice data: run `binprice db stop`, delete "
            f"{info.pgdata}, and run the command again"
        ) from None
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split())
        raise EmbeddedServerError(f"cannot prepare the embedded database: {reason}") from None


class StartLock:
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
