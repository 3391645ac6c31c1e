"""Settings: one frozen object, resolved flag > environment > `.env` > embedded default.

Only the database location lives here for now; ingest options join as they land.
This module is imported by every command, so it stays light (no SQLAlchemy, no psycopg).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlsplit, urlunsplit

from binprice.conninfo import is_keyword_form, keywords_to_url, parse_keywords, redact
from binprice.errors import ConfigError
from binprice.markets import DEFAULT_MARKET

#: The market a command works on when no `--market` is given (environment or `.env`).
MARKET_VAR = "BINPRICE_MARKET"

#: Environment variables naming the database, in order of preference.
DATABASE_URL_VARS = ("BINPRICE_DATABASE_URL", "DATABASE_URL")
#: The variables of the original design's `.env` (docker-compose style).
COMPOSE_VARS = ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB", "DB_HOST", "DB_PORT")
DATA_DIR_VAR = "BINPRICE_DATA_DIR"
APP_NAME = "binprice"
COMPOSE_DEFAULT_HOST = "127.0.0.1"
COMPOSE_DEFAULT_PORT = "5433"
PERCENT_ENCODINGS = "? as %3F, @ as %40, / as %2F, # as %23"
PERCENT_ENCODE_HINT = (
    f"a password holding ?, @, / or # must be percent-encoded ({PERCENT_ENCODINGS})"
)
#: python-dotenv's logger, which warns about each line it cannot parse.
DOTENV_LOGGER = "dotenv.main"
_ACCEPTED_SCHEMES = {"postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2"}


@dataclass(frozen=True, slots=True)
class Settings:
    """Where binprice keeps its data.

    `database_url` is a libpq URL (`postgresql://…`), or None for the embedded server.
    `source` says where it came from (for `db info` and error messages).
    """

    database_url: str | None
    source: str
    data_dir: Path

    @property
    def embedded(self) -> bool:
        return self.database_url is None


def default_data_dir() -> Path:
    """The per-user data directory, overridable with BINPRICE_DATA_DIR.

    Linux and macOS paths are computed here as platformdirs computes them
    (`$XDG_DATA_HOME` or `~/.local/share`, `~/Library/Application Support`): importing
    platformdirs costs ~25 ms, a sixth of `binprice latest`. Elsewhere platformdirs decides.
    """
    override = os.environ.get(DATA_DIR_VAR)
    if override:
        return Path(override).expanduser()
    if sys.platform.startswith("linux"):
        xdg = os.environ.get("XDG_DATA_HOME", "").strip()
        root = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
        return root / APP_NAME
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP_NAME
    from platformdirs import user_data_path  # pragma: no cover - Windows and others

    return user_data_path(APP_NAME, appauthor=False)  # pragma: no cover


def load_settings(
    database_url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> Settings:
    """Resolve the settings: flag > environment > `.env` in the working directory > embedded."""
    env = os.environ if environ is None else environ
    data_dir = default_data_dir()
    if database_url:
        return Settings(normalize_database_url(database_url), "--database-url", data_dir)
    found = _url_from(env, "environment")
    if found is not None:
        return Settings(found[0], found[1], data_dir)
    dotenv = read_dotenv(Path(".env") if dotenv_path is None else dotenv_path)
    found = _url_from(dotenv, ".env")
    if found is not None:
        return Settings(found[0], found[1], data_dir)
    return Settings(None, "embedded", data_dir)


def _url_from(values: Mapping[str, str], where: str) -> tuple[str, str] | None:
    for name in DATABASE_URL_VARS:
        if values.get(name):
            return normalize_database_url(values[name]), f"{name} ({where})"
    if values.get("POSTGRES_USER") or values.get("POSTGRES_DB") or values.get("DB_HOST"):
        return compose_url(values), f"POSTGRES_*/DB_* ({where})"
    return None


def compose_url(values: Mapping[str, str]) -> str:
    """Build a URL from the original design's variables (POSTGRES_USER, …, DB_HOST, DB_PORT)."""
    user = values.get("POSTGRES_USER") or "postgres"
    password = values.get("POSTGRES_PASSWORD") or ""
    database = values.get("POSTGRES_DB") or user
    host = values.get("DB_HOST") or COMPOSE_DEFAULT_HOST
    port = values.get("DB_PORT") or COMPOSE_DEFAULT_PORT
    if not port.isdigit():
        raise ConfigError(f"DB_PORT must be a number, got {port!r}")
    auth = quote(user, safe="")
    if password:
        auth += ":" + quote(password, safe="")
    return f"postgresql://{auth}@{host}:{port}/{quote(database, safe='')}"


def normalize_database_url(url: str) -> str:
    """Return a libpq URL psycopg 3 accepts: `postgres://` and SQLAlchemy dialect forms included,
    and keyword/value strings (`host=… dbname=…`, as libpq accepts them) turned into the URL.

    Raises ConfigError (with every secret masked) for anything that is not a PostgreSQL URL.
    """
    url = url.strip()
    if is_keyword_form(url):
        return _keywords_url(url)
    if "://" not in url:
        # Not echoed: a string that is neither form may be a password pasted in the wrong place.
        raise ConfigError(
            "malformed database URL: expected postgresql://user:password@host:port/db "
            "or a keyword/value string such as 'host=localhost dbname=prices'"
        )
    try:
        parts = urlsplit(url)
        port = parts.port  # validates the port
    except ValueError:
        # Not urlsplit's message: it quotes what it took for the port or host, which may be a
        # piece of a password holding an unencoded / or ?.
        raise ConfigError(
            f"malformed database URL {redact(url)}: expected postgresql://user:password@host:"
            f"port/db; {PERCENT_ENCODE_HINT}"
        ) from None
    if parts.scheme not in _ACCEPTED_SCHEMES:
        raise ConfigError(
            f"malformed database URL {redact(url)}: expected postgresql://user:password@host:port/db"
        )
    if port is not None and not 0 < port < 65536:
        raise ConfigError(f"malformed database URL {redact(url)}: port {port} is out of range")
    normal = urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))
    _check_userinfo_as_libpq_reads_it(normal, parts)
    return normal


def _check_userinfo_as_libpq_reads_it(url: str, parts: SplitResult) -> None:
    """Refuse a URL whose user or password libpq reads differently from the URL standard:
    libpq's userinfo ends at the first '@' (before any '/'), the standard's at the last '@'
    before the first '/', '?' or '#'; they disagree exactly when the password (or user) holds
    one of those unencoded. Connecting would then send a wrong password, and messages built
    from either reading would quote pieces of the right one."""
    from psycopg import Error
    from psycopg.conninfo import conninfo_to_dict

    try:
        libpq = conninfo_to_dict(url)
    except Error:
        # Not psycopg's message: it may quote the value libpq choked on.
        raise ConfigError(
            f"malformed database URL {redact(url)}: libpq cannot read it; {PERCENT_ENCODE_HINT}"
        ) from None
    standard = {
        "user": None if parts.username is None else unquote(parts.username),
        "password": None if parts.password is None else unquote(parts.password),
    }
    # Query parameters (`?user=…&password=…`) override the userinfo, in libpq as here.
    standard.update((k, v) for k, v in parse_qsl(parts.query) if k in standard)
    if any((libpq.get(key) or None) != (value or None) for key, value in standard.items()):
        raise ConfigError(
            f"the database URL's password must be percent-encoded ({PERCENT_ENCODINGS}): "
            f"{redact(url)}"
        )


def _keywords_url(text: str) -> str:
    try:
        params = parse_keywords(text)
    except ValueError as exc:
        # Not echoed, even redacted: where libpq cannot read the string, nobody knows which
        # words are a password (`password=two words` unquoted has one in a keyword's place).
        raise ConfigError(f"malformed database connection string: {exc}") from None
    for port in params.get("port", "").split(","):
        if port and not (port.isdigit() and 0 < int(port) < 65536):
            raise ConfigError(
                f"malformed database connection string {redact(text)}: bad port {port!r}"
            )
    return keywords_to_url(params)


def read_dotenv(path: Path) -> dict[str, str]:
    """The variables of a `.env` file as python-dotenv reads it (comments, `export`, single and
    double quotes, escapes and line breaks inside double quotes); a missing file is empty.

    Never interpolated: `${NAME}` stays as written, as the parser before python-dotenv left it,
    so a password holding one reaches PostgreSQL unchanged and no environment variable leaks
    into a value. A name without `=` and a line python-dotenv cannot parse are skipped
    silently, as before (its warning would be a stray line on every command's stderr).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        return {}
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"cannot read {path.absolute()}: byte {exc.start + 1} is not UTF-8; "
            "save the file as UTF-8"
        ) from None
    import io
    import logging

    # Imported only when there is a .env to read: 5-20 ms that most commands never pay.
    from dotenv import dotenv_values

    logger = logging.getLogger(DOTENV_LOGGER)
    was_disabled, logger.disabled = logger.disabled, True
    try:
        values = dotenv_values(stream=io.StringIO(text), interpolate=False)
    finally:
        logger.disabled = was_disabled
    return {key: value for key, value in values.items() if value is not None}


def market_setting(given: str | None, *, dotenv_path: Path | None = None) -> str:
    """The market a command works on, as text: `--market` (Typer reads `BINPRICE_MARKET` from
    the environment into it), else `BINPRICE_MARKET` in `.env`, else spot. Checked by
    `binprice.markets.parse_market` where it is used."""
    if given:
        return given
    if os.environ.get(MARKET_VAR):
        return os.environ[MARKET_VAR]
    dotenv = read_dotenv(Path(".env") if dotenv_path is None else dotenv_path)
    return dotenv.get(MARKET_VAR) or DEFAULT_MARKET.value
