"""The exceptions binprice raises.

The library raises these; only the CLI turns them into one line and an exit code (its
`EXIT_CODES`), so the library never decides how a process ends.
Every message is written for the user: it says what went wrong and what to do.
"""

from __future__ import annotations

import sys
from pathlib import Path


class BinpriceError(Exception):
    """Base class of every error binprice raises on purpose."""


class ConfigError(BinpriceError):
    """Raised when settings (flags, environment, .env) are invalid, e.g. a malformed URL."""


class UsageError(BinpriceError):
    """Raised for bad user input such as an unparseable timestamp or duration."""


class DatabaseError(BinpriceError):
    """Base class of database problems."""


class DatabaseUnavailableError(DatabaseError):
    """Raised when the database cannot be reached (refused, unknown host, auth failure)."""


class SchemaOutdatedError(DatabaseError):
    """Raised when the database schema is not at the revision this binprice expects."""


class EmbeddedServerError(DatabaseError):
    """Raised when the embedded PostgreSQL server cannot be initialised or started."""


class NotFoundError(BinpriceError):
    """Raised when a query finds nothing at all for any requested symbol."""


class AbortedError(BinpriceError):
    """Raised when the user aborts a run with a second Ctrl+C; nothing received is lost."""


class ExchangeError(BinpriceError):
    """Base class of problems talking to the exchange."""


class ExchangeUnavailableError(ExchangeError):
    """Raised when the exchange cannot be reached at all (refused, DNS, TLS)."""


class EmptyPageError(ExchangeUnavailableError):
    """Raised when the exchange answers an empty page for trade ids it is known to have (a
    glitch, an outage, a lagging node): no proof that they do not exist, so they stay missing
    and are asked for again later."""


class ExchangeBannedError(ExchangeError):
    """Raised by a one-off command (`gaps --repair`, `gaps --verify --against-exchange`,
    `import --rest-tail`) when the exchange refuses this IP's REST requests (HTTP 418 ban or
    429 `Retry-After`, seen by this or another binprice process) for longer than the command
    would wait: binprice sends nothing before then, since Binance lengthens repeated bans."""

    def __init__(self, until: float, status: int) -> None:
        from datetime import UTC, datetime

        when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        why = "banned this IP (HTTP 418)" if status == 418 else "rate-limited this IP (HTTP 429)"
        super().__init__(
            f"the exchange {why} until {when}; binprice sends no request before then "
            "(Binance lengthens repeated bans): run this again after that"
        )
        self.until = until
        self.status = status


class SymbolError(ExchangeError):
    """Raised when a symbol is unknown to the exchange or not trading."""


class GeoRestrictedError(ExchangeError):
    """Raised on HTTP 451: the exchange refuses this location; retrying cannot help."""


class ExportError(BinpriceError):
    """Raised when trades cannot be exported as asked: a missing optional extra (pyarrow), a
    value no Parquet decimal can hold, or an output that cannot be written."""


class MissingExtraError(ExportError):
    """Raised when an optional feature's package is not installed (pyarrow for Parquet,
    matplotlib for `--png`, pandas or polars for data frames). The message says how to add
    it to the environment binprice runs in: `pipx inject binprice …` for a pipx install, this
    interpreter's own `-m pip install …` otherwise (the package index's `binprice` is another
    project, so `pip install 'binprice[extra]'` is never the advice)."""

    def __init__(self, feature: str, packages: tuple[str, ...]) -> None:
        super().__init__(f"{feature} needs {' and '.join(packages)}: {install_hint(packages)}")
        self.packages = packages


def install_hint(packages: tuple[str, ...]) -> str:
    """The command that adds `packages` to the environment this binprice runs in."""
    names = " ".join(packages)
    prefix = Path(sys.prefix)
    if prefix.parent.name == "venvs" and "pipx" in prefix.parent.parent.name:
        return f"pipx inject {prefix.name} {names}"
    return f"{sys.executable} -m pip install {names}"


class ArchiveError(BinpriceError):
    """Base class of problems with Binance's public trade archive (`binprice import`)."""


class ArchiveFileError(ArchiveError):
    """Raised when one archive file is refused (missing, checksum mismatch, truncated or
    corrupt zip, malformed line); the message names the file. An import reports it and goes
    on with the other files."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


class ArchiveUnavailableError(ArchiveError):
    """Raised when the archive service cannot be reached (refused, DNS, repeated 5xx)."""


class ImportIncompleteError(ArchiveError):
    """Raised by `binprice import` after its summary when some files were refused or
    missing; the files that were verified are stored, and a re-run retries only the rest."""


class DatabaseBusyError(DatabaseError):
    """Raised when a maintenance command (`db prune`) cannot get the lock it needs within its
    timeout because other sessions hold the table; nothing was changed, and it can be retried."""
