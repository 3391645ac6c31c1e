"""Where the embedded cluster and its socket live, and making directories without touching others.

The cluster is `<data dir>/pgdata`. As root the server runs as a system user that must be able
to reach it; binprice never changes the permissions of a directory it did not create, so when an
existing ancestor (root's 0700 HOME, pytest's 0700 temp dirs) shuts that user out, the cluster
lives in `/var/lib/binprice/clusters/<key of the data dir>/pgdata` instead.

The socket goes in the cluster directory itself (0700, the server user's) when its path fits in
`sun_path`; otherwise in `/tmp/binprice-<key>`, a 0700 directory of the server user that
binprice creates and checks. Never in a shared directory.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from pathlib import Path

from binprice.errors import EmbeddedServerError

PGDATA_NAME = "pgdata"
#: Root's cluster when the data directory is out of the server user's reach.
SYSTEM_DIR = Path("/var/lib/binprice")
#: The socket's fallback parent: short on every platform (macOS's $TMPDIR is not).
SHORT_SOCKET_PARENT = Path("/tmp")
#: sun_path holds 108 bytes on Linux and 104 on macOS, the terminating NUL included.
SOCKET_PATH_MAX = 103
PORT = 5432
_KEY_LENGTH = 16


def key(path: Path) -> str:
    """A short, stable name for `path` (absolute)."""
    import hashlib  # not at the top: the fast path rarely needs it

    return hashlib.sha256(os.fsencode(path)).hexdigest()[:_KEY_LENGTH]


def in_place(data_dir: Path) -> Path:
    return data_dir / PGDATA_NAME


def system_cluster(data_dir: Path) -> Path:
    return SYSTEM_DIR / "clusters" / key(data_dir.resolve()) / PGDATA_NAME


def existing_cluster(data_dir: Path) -> Path | None:
    """The cluster directory of `data_dir` if one exists (resolved), else None."""
    local = in_place(data_dir)
    if local.is_dir():
        return local.resolve()
    if os.geteuid() == 0:
        system = system_cluster(data_dir)
        if system.is_dir():
            return system.resolve()
    return None


def socket_dir(pgdata: Path) -> Path:
    """The directory of the server's socket: `pgdata` when the socket path fits, else a private
    directory under /tmp named after `pgdata`."""
    if len(os.fsencode(pgdata / f".s.PGSQL.{PORT}")) <= SOCKET_PATH_MAX:
        return pgdata
    return SHORT_SOCKET_PARENT / f"binprice-{key(pgdata)}"


def unsearchable(path: Path, uid: int, gids: Collection[int]) -> Path | None:
    """The first existing directory from / down to `path` that a process with `uid` and `gids`
    may not enter (mode bits only), or None if it can reach `path`."""
    for directory in (*reversed(path.parents), path):
        try:
            st = directory.stat()
        except FileNotFoundError:
            return None  # the rest is still to be created, with modes binprice chooses
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid in gids:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return directory
    return None


def make_dirs(path: Path, mode: int) -> None:
    """Create `path` and its missing parents with exactly `mode` (whatever the umask); existing
    directories are left exactly as they are. Raises EmbeddedServerError."""
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode)
        except FileExistsError:
            continue  # another process made it: it is not ours to change
        except OSError as exc:
            raise unwritable(directory.parent, exc) from None
        os.chmod(directory, mode)


def make_private_dir(path: Path, uid: int, gid: int) -> None:
    """Create `path` as a 0700 directory of `uid`, or check that it already is one (not a
    symlink, nobody else's): it sits in a shared parent. Raises EmbeddedServerError."""
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        raise unwritable(path.parent, exc) from None
    else:
        if os.geteuid() != uid:
            os.chown(path, uid, gid)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != uid or st.st_mode & 0o077:
        raise EmbeddedServerError(
            f"{path} (the embedded server's socket directory) is not a private directory of the "
            f"server's user (owner uid {st.st_uid}, mode {stat.filemode(st.st_mode)}); "
            "remove it and try again"
        )


def unwritable(directory: Path, exc: OSError) -> EmbeddedServerError:
    """The error for a directory binprice must write to and cannot."""
    return EmbeddedServerError(
        f"cannot write to {directory} ({exc.strerror or exc}): the embedded server keeps its "
        "files there; make it writable, set BINPRICE_DATA_DIR to a writable directory, "
        "or pass --database-url"
    )
