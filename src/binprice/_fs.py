"""File-system steps shared by several rooms: durable, private files (the spool, the embedded
server's first start) and a file's SHA-256 (archive files imported and exported)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

#: What binprice creates holds trades (spool chunks) or a database: its owner's alone.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def fsync_dir(directory: Path) -> None:
    """Make the entries of `directory` (a rename into it, a new file) durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def make_private_dirs(path: Path) -> None:
    """Create `path` and its missing parents, each 0700; existing ones keep their mode (a
    directory the user made is the user's business)."""
    missing: list[Path] = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, PRIVATE_DIR_MODE)
        except FileExistsError:
            continue


def make_private(directory: Path) -> bool:
    """Take group and other permissions off `directory`, one binprice owns (an earlier version
    made it 0755); True if it had any."""
    mode = stat.S_IMODE(directory.stat().st_mode)
    if not mode & 0o077:
        return False
    os.chmod(directory, PRIVATE_DIR_MODE)
    return True


def create_private_file(path: Path) -> int:
    """A new (or truncated) file only its owner may read; its descriptor, open for writing."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of the file at `path`, as `sha256sum` prints it (read in blocks, so a
    gigabyte archive zip never sits in memory)."""
    with path.open("rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def written_in_place(path: Path) -> bool:
    """Whether `path` exists and is neither a regular file nor a directory (a device such as
    /dev/null, a FIFO): an export writes into it as it is, never renames a finished
    ``.part`` file over it (which would put a regular file in place of /dev/null)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)
