"""Making, configuring, starting and stopping the cluster with the wheel's PostgreSQL programs.

A new cluster is built in a sibling `pgdata.partial-*` directory — initdb, the access rules, the
`binprice` database — and renamed into place only when complete, so an interruption at any
moment (Ctrl+C, SIGKILL, power loss) leaves either nothing or a whole cluster; leftovers are
removed by the next start. Each step is a function of its own so tests can stop between them.

Access: peer authentication only, over the Unix socket, with an ident map that admits exactly one
OS user — the one binprice runs as — as the superuser; no TCP listener. Nothing to leak and no
secret to keep, unlike a generated password. The rules are rewritten before every start, and the
listener settings are given on the server's command line, which outranks postgresql.conf and
ALTER SYSTEM.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from binprice._fs import fsync_dir
from binprice.embedded import _pidfile
from binprice.embedded._account import Account
from binprice.embedded._layout import PORT, unwritable
from binprice.embedded._server import EMBEDDED_DATABASE, EMBEDDED_USER
from binprice.errors import EmbeddedServerError

LOG_NAME = "log"
PARTIAL_INFIX = ".partial-"
INIT_TIMEOUT_SECONDS = 300
START_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 60
_STOP_POLL_SECONDS = 0.02
#: PostgreSQL's programs get this environment, not ours: PGPORT, PGDATA and friends in the
#: caller's environment must not steer them, and the server need not see the caller's secrets.
_ENV = {"PATH": os.defpath, "LC_ALL": "C"}
_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}
#: pg_ctl pastes the data directory into a shell command between double quotes.
_UNSAFE_PATH_CHARACTERS = frozenset('"$`\\\n')
HBA = (
    "# Written by binprice before every start of the embedded server; edits are overwritten.\n"
    "# Only the OS user named in pg_ident.conf may connect, over the private Unix socket.\n"
    "local all all peer map=binprice\n"
)


def check_path(pgdata: Path) -> None:
    if _UNSAFE_PATH_CHARACTERS & set(str(pgdata)):
        raise EmbeddedServerError(
            f"the embedded server cannot use {pgdata}: its path contains one of "
            '" $ ` \\ or a newline; set BINPRICE_DATA_DIR to a plainer path'
        )


def new_partial(pgdata: Path, account: Account) -> Path:
    """Remove what earlier interrupted attempts left beside `pgdata`; return a fresh, empty
    directory of `account` to build the cluster in. Call with the start lock held."""
    for leftover in pgdata.parent.glob(f"{pgdata.name}{PARTIAL_INFIX}*"):
        shutil.rmtree(leftover, ignore_errors=True)
    # Unique, so that a program orphaned by an earlier SIGKILL can only write into its own.
    partial = pgdata.with_name(f"{pgdata.name}{PARTIAL_INFIX}{os.getpid()}-{time.time_ns()}")
    try:
        partial.mkdir(0o700)
    except OSError as exc:
        raise unwritable(pgdata.parent, exc) from None
    if not account.is_self:
        os.chown(partial, account.uid, account.gid)
    return partial


def initdb(partial: Path, account: Account, bin_dir: Path) -> None:
    _run(
        account,
        [
            str(bin_dir / "initdb"),
            "-D",
            str(partial),
            "-U",
            EMBEDDED_USER,
            "--auth-local=peer",
            "--auth-host=reject",
            "--encoding=UTF8",
            "--no-locale",
            "--no-instructions",
        ],
        what="initdb",
        timeout=INIT_TIMEOUT_SECONDS,
    )


def write_access_rules(pgdata: Path, account: Account, client: str) -> None:
    """pg_hba.conf and pg_ident.conf: peer authentication for `client` (an OS user name) as the
    superuser, nobody else. Written atomically, owned by the server's account, mode 0600."""
    quoted = '"' + client.replace('"', '""') + '"'
    ident = f"# Written by binprice; edits are overwritten.\nbinprice {quoted} {EMBEDDED_USER}\n"
    for name, text in (("pg_hba.conf", HBA), ("pg_ident.conf", ident)):
        _write_owned(pgdata / name, text, account)


def create_database(partial: Path, account: Account, bin_dir: Path) -> None:
    """Create the `binprice` database with a single-user backend: no socket, no listener."""
    _run(
        account,
        [
            str(bin_dir / "postgres"),
            "--single",
            "-D",
            str(partial),
            "-c",
            "exit_on_error=on",
            "postgres",
        ],
        what="creating the binprice database",
        timeout=INIT_TIMEOUT_SECONDS,
        stdin=f'CREATE DATABASE "{EMBEDDED_DATABASE}";\n',
    )


def install(partial: Path, pgdata: Path) -> None:
    """Move the finished cluster into place: one rename, made durable."""
    os.rename(partial, pgdata)
    fsync_dir(pgdata.parent)


def create(pgdata: Path, account: Account, bin_dir: Path, client: str) -> None:
    """Make a complete cluster at `pgdata` (which must not exist), or leave nothing there."""
    partial = new_partial(pgdata, account)
    initdb(partial, account, bin_dir)
    write_access_rules(partial, account, client)
    create_database(partial, account, bin_dir)
    install(partial, pgdata)


def start(pgdata: Path, account: Account, bin_dir: Path, socket_dir: Path) -> None:
    """Start the server with pg_ctl (which detaches it) and wait until it accepts connections."""
    options = [
        "-c", "listen_addresses=",
        "-c", f'unix_socket_directories="{socket_dir}"',
        "-c", "unix_socket_permissions=0700",
        "-c", f"port={PORT}",
    ]  # fmt: skip
    _run(
        account,
        [
            str(bin_dir / "pg_ctl"),
            "start",
            "-w",
            "-t",
            str(START_TIMEOUT_SECONDS),
            "-D",
            str(pgdata),
            "-l",
            str(pgdata / LOG_NAME),
            "-o",
            shlex.join(options),
        ],
        what="starting the server",
        timeout=START_TIMEOUT_SECONDS + 10,
        log=pgdata / LOG_NAME,
    )


def stop(pgdata: Path, pid: int, mode: str) -> None:
    """Signal the (verified) server `pid` to shut down in `mode` and wait until it has."""
    os.kill(pid, _SIGNALS[mode])
    deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
    # Like pg_ctl: done when the pid file is gone or its process has exited.
    while (found := _pidfile.read(pgdata)) is not None and found.pid == pid:
        if not _pidfile.is_this_server(pid, pgdata):
            (pgdata / _pidfile.PID_FILE).unlink(missing_ok=True)
            return
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                f"the embedded server (pid {pid}) did not stop within {STOP_TIMEOUT_SECONDS} s; "
                f"see its log {pgdata / LOG_NAME}"
            )
        time.sleep(_STOP_POLL_SECONDS)


def clear_stale(pgdata: Path, stale: _pidfile.PidFile, socket_dirs: list[Path]) -> None:
    """Remove a pid file whose process is not this server, and the socket lock files naming it:
    PostgreSQL itself would refuse to start while that (unrelated) pid is alive."""
    for directory in socket_dirs:
        lock = directory / f".s.PGSQL.{PORT}.lock"
        try:
            pid = int(lock.read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            continue
        if not _pidfile.is_this_server(pid, pgdata):
            lock.unlink(missing_ok=True)
            (directory / f".s.PGSQL.{PORT}").unlink(missing_ok=True)
    if (found := _pidfile.read(pgdata)) is not None and found.pid == stale.pid:
        (pgdata / _pidfile.PID_FILE).unlink(missing_ok=True)


def _run(
    account: Account,
    command: list[str],
    *,
    what: str,
    timeout: float,
    stdin: str | None = None,
    log: Path | None = None,
) -> None:
    try:
        subprocess.run(
            command,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=True,
            env=_ENV,
            cwd="/",  # the caller's directory may be closed to the server's user
            timeout=timeout,
            **account.run_options(),
        )
    except subprocess.CalledProcessError as exc:
        reason = _reason(exc.stderr, exc.stdout, log)
        raise EmbeddedServerError(f"{what} failed: {reason}") from None
    except (subprocess.TimeoutExpired, OSError) as exc:
        raise EmbeddedServerError(f"{what} failed: {exc}") from None


def _reason(stderr: str | None, stdout: str | None, log: Path | None) -> str:
    lines = [*(stderr or "").splitlines(), *(stdout or "").splitlines()]
    if log is not None:
        with contextlib.suppress(OSError):
            lines += log.read_text(errors="replace").splitlines()[-20:]
    for line in reversed(lines):  # PostgreSQL's own words are the most useful
        if "FATAL:" in line or "ERROR:" in line or "PANIC:" in line:
            reason = line.strip()
            break
    else:
        reason = next((line.strip() for line in reversed(lines) if line.strip()), "no output")
    return reason + (f"; see {log}" if log is not None else "")


def _write_owned(path: Path, text: str, account: Account) -> None:
    try:
        if path.read_text() == text:
            return
    except (OSError, UnicodeDecodeError):
        pass
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
            if not account.is_self:
                os.fchown(fd, account.uid, account.gid)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        raise unwritable(path.parent, exc) from None
