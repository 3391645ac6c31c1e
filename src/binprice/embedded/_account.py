"""The OS account the embedded server runs as.

A normal user's server runs as that user. PostgreSQL refuses to run as root, so as root it runs as
`binprice-pg`, a system user with a group of its own, no login shell and no home, created on
first use. Its processes get exactly that uid and gid and no supplementary groups (never root's
group). A cluster an older binprice made as root belongs to `embedded_postgres` and keeps running
as that user, with that user's own group.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from binprice.errors import EmbeddedServerError

SERVER_USER = "binprice-pg"
#: The user binprice before 0.2 (through the embedded-postgres package) ran root's clusters as.
LEGACY_USER = "embedded_postgres"
_NOLOGIN_SHELLS = ("/usr/sbin/nologin", "/sbin/nologin")
_ALREADY_EXISTS = 9  # groupadd's and useradd's exit status for a name that is taken
_USERADD_TIMEOUT_SECONDS = 60


@dataclass(frozen=True, slots=True)
class Account:
    """An OS user (with its primary group) that runs PostgreSQL's programs."""

    name: str
    uid: int
    gid: int

    @property
    def is_self(self) -> bool:
        return self.uid == os.geteuid()

    def run_options(self) -> dict[str, Any]:
        """`subprocess.run` arguments that run a program as this account, and only as it."""
        if self.is_self:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def current() -> Account:
    """The account binprice runs as; its name is the one peer authentication admits."""
    uid = os.geteuid()
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        raise EmbeddedServerError(
            f"user id {uid} has no entry in the user database, which PostgreSQL needs; "
            "run binprice as a user listed in /etc/passwd or pass --database-url"
        ) from None
    return Account(entry.pw_name, uid, entry.pw_gid)


def for_cluster(pgdata: Path | None) -> Account:
    """The account that runs the cluster in `pgdata` (None: a cluster still to be made)."""
    if os.geteuid() != 0:
        me = current()
        if pgdata is not None and pgdata.stat().st_uid != me.uid:
            raise _foreign(pgdata, _name_of(pgdata.stat().st_uid))
        return me
    if pgdata is None:
        return server_user()
    owner = pgdata.stat().st_uid
    if owner == 0:
        raise EmbeddedServerError(
            f"the embedded cluster {pgdata} belongs to root, and PostgreSQL does not run as "
            f"root; give it to the server's user (chown -R {SERVER_USER}: {pgdata}) or move it away"
        )
    name = _name_of(owner)
    if name == SERVER_USER:
        return server_user()
    if name == LEGACY_USER:
        entry = pwd.getpwuid(owner)
        return Account(name, owner, entry.pw_gid)
    raise _foreign(pgdata, name)


def server_user() -> Account:
    """`binprice-pg`, created (user and group) if it does not exist yet."""
    try:
        entry = pwd.getpwnam(SERVER_USER)
    except KeyError:
        _create_server_user()
        try:
            entry = pwd.getpwnam(SERVER_USER)
        except KeyError:  # created, yet not visible (a name service cache)
            raise _cannot_create("useradd succeeded but the user is not found") from None
    if entry.pw_gid == 0:
        raise EmbeddedServerError(
            f"the system user {SERVER_USER} has root's group; give it a group of its own "
            f"(groupadd --system {SERVER_USER}; usermod -g {SERVER_USER} {SERVER_USER})"
        )
    return Account(SERVER_USER, entry.pw_uid, entry.pw_gid)


def _create_server_user() -> None:
    shell = next((s for s in _NOLOGIN_SHELLS if os.path.exists(s)), "/bin/false")
    commands = (
        ["groupadd", "--system", SERVER_USER],
        [
            "useradd",
            "--system",
            "--gid",
            SERVER_USER,
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            shell,
            "--comment",
            "binprice embedded PostgreSQL",
            SERVER_USER,
        ],
    )
    for command in commands:
        try:
            done = subprocess.run(
                command, capture_output=True, text=True, timeout=_USERADD_TIMEOUT_SECONDS
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise _cannot_create(f"{command[0]}: {exc}") from None
        # Taken: another binprice process created it a moment ago.
        if done.returncode not in (0, _ALREADY_EXISTS):
            lines = (done.stderr or done.stdout).strip().splitlines()
            raise _cannot_create(lines[-1] if lines else f"{command[0]} failed")


def _cannot_create(reason: str) -> EmbeddedServerError:
    return EmbeddedServerError(
        f"cannot create the system user {SERVER_USER} the embedded server runs as when binprice "
        f"runs as root ({reason}); create that user and a group of the same name yourself, "
        "run binprice as a normal user, or pass --database-url"
    )


def _name_of(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _foreign(pgdata: Path, owner: str) -> EmbeddedServerError:
    return EmbeddedServerError(
        f"the embedded cluster {pgdata} belongs to {owner}; run binprice as that user, "
        "or set BINPRICE_DATA_DIR to a directory of your own"
    )
