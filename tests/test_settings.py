"""Settings: precedence, URL normalisation, keyword/value strings, the original design's .env,
and secrets masked in every form a connection string can take."""

from __future__ import annotations

from pathlib import Path

import pytest

from binprice.conninfo import parse_keywords, redact
from binprice.errors import ConfigError
from binprice.settings import load_settings, normalize_database_url, read_dotenv

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgres://u:p@h:5432/db", "postgresql://u:p@h:5432/db"),
        ("postgresql://u:p@h/db", "postgresql://u:p@h/db"),
        ("postgresql+psycopg://u@h:1/db", "postgresql://u@h:1/db"),
        ("postgresql+psycopg2://u@h/db?sslmode=require", "postgresql://u@h/db?sslmode=require"),
        ("  postgresql://h/db  ", "postgresql://h/db"),
    ],
    ids=["postgres-scheme", "postgresql", "sqlalchemy-psycopg", "psycopg2-query", "whitespace"],
)
def test_normalize_database_url(given: str, expected: str) -> None:
    """postgres:// and SQLAlchemy dialect URLs become libpq URLs."""
    assert normalize_database_url(given) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "mysql://u:hunter2@h/db",
        "postgresql://u:hunter2@h:99999/db",
        "postgresql://u:hunter2@h:x/db",
    ],
    ids=["wrong-scheme", "port-range", "port-text"],
)
def test_malformed_url_is_a_config_error_with_masked_password(bad: str) -> None:
    """A malformed URL raises ConfigError whose message hides the password."""
    with pytest.raises(ConfigError) as info:
        normalize_database_url(bad)
    assert "hunter2" not in str(info.value)
    assert "***" in str(info.value)


def test_redact_hides_only_the_password() -> None:
    """User, host, port and database stay readable."""
    assert redact("postgresql://bob:s3cr%40t@db.example:5433/prices") == (
        "postgresql://bob:***@db.example:5433/prices"
    )
    assert redact("postgresql://bob@h/db") == "postgresql://bob@h/db"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://bob:hunter2@h/db", "postgresql://bob:***@h/db"),
        ("postgres://bob:hun@ter2@h/db", "postgres://bob:***@h/db"),
        ("postgresql://bob@h/db?password=hunter2", "postgresql://bob@h/db?password=***"),
        ("postgresql://h/db?sslmode=require&PassWord=hunter2&x=1",
         "postgresql://h/db?sslmode=require&PassWord=***&x=1"),
        ("postgresql://h/db?passw%6Frd=hunter2", "postgresql://h/db?passw%6Frd=***"),
        ("postgresql://h/db?sslpassword=hunter2", "postgresql://h/db?sslpassword=***"),
        ("host=h password=hunter2 dbname=db", "host=h password=*** dbname=db"),
        ("host=h password = 'hun ter2' dbname=db", "host=h password = *** dbname=db"),
        ("host=h password='hun\\' ter2' dbname=db", "host=h password=*** dbname=db"),
        ("host=h password='hunter2", "host=h password=***"),
        ("host=h sslpassword=hunter2", "host=h sslpassword=***"),
        ("error: could not reach 'postgresql://u:hunter2@h/db': refused",
         "error: could not reach 'postgresql://u:***@h/db': refused"),
    ],
    ids=["userinfo", "userinfo-with-at", "query", "query-any-case", "query-percent-encoded-key",
         "sslpassword-query", "keyword", "keyword-quoted", "keyword-escaped-quote",
         "keyword-unterminated", "keyword-sslpassword", "url-inside-a-message"],
)  # fmt: skip
def test_redact_masks_every_form_of_password(text: str, expected: str) -> None:
    """Userinfo, query parameters (any case, percent-encoded) and keyword/value pairs."""
    assert redact(text) == expected
    assert "hunter2" not in redact(text)


def test_redact_removes_the_literal_secrets_of_a_connection_string() -> None:
    """A driver message that quotes the password itself (raw or percent-encoded) is masked too."""
    url = "postgresql://u:p%40ss%20word@h/db?sslpassword=k3y"
    message = "failed for 'p@ss word' and p%40ss%20word and k3y"
    assert redact(message, url) == "failed for '***' and *** and ***"
    assert redact("x p w x", "host=h password='p w'") == "x *** x"
    assert "secret" not in redact("postgresql://u:top secret@h/db")  # not a URL libpq takes


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("host=db.example port=5433 dbname=prices user=bob password=s3cret",
         "postgresql://bob:s3cret@/prices?host=db.example&port=5433"),
        ("host=/run/pg dbname=prices", "postgresql:///prices?host=/run/pg"),
        ("  dbname = 'my db'  user=bob password='it\\'s' ",
         "postgresql://bob:it%27s@/my%20db"),
        ("host=a,b port=1,2 sslmode=require",
         "postgresql:///?host=a,b&port=1,2&sslmode=require"),
    ],
    ids=["tcp", "socket", "quoted", "multi-host"],
)  # fmt: skip
def test_keyword_value_strings_become_urls(given: str, expected: str) -> None:
    """libpq's keyword/value form is accepted and turned into the equivalent URL."""
    assert normalize_database_url(given) == expected


def test_keyword_value_parser_follows_libpq_quoting() -> None:
    """Quoted values keep spaces; backslash escapes a quote or a backslash (libpq's parser)."""
    assert parse_keywords("dbname=1 user = 'x y' password='it\\'s' host=back\\\\slash") == {
        "dbname": "1",
        "user": "x y",
        "password": "it's",
        "host": "back\\slash",
    }


def test_redact_finds_the_secret_of_a_string_libpq_refuses() -> None:
    """An unknown keyword makes libpq refuse the string; its password is still scrubbed."""
    assert redact("auth failed: p w", "host=h nokey=1 password='p w'") == "auth failed: ***"
    assert redact("auth failed: it's", "password='it\\'s") == "auth failed: ***"


@pytest.mark.parametrize(
    "bad",
    [
        "host=h password=hunter2 port=99999",
        "host=h password=hunter2 dbname",
        "host=h password='hunter2",
        "hunter2",
        "host=h password=hunter 2",
        "host=h hunter2=x",
    ],
    ids=[
        "port-range",
        "missing-equals",
        "unterminated",
        "neither-form",
        "unquoted-space",
        "unknown-keyword",
    ],
)
def test_malformed_keyword_strings_are_config_errors_without_the_password(bad: str) -> None:
    """A malformed keyword/value string (or something that is no connection string at all, which
    may be a password pasted in the wrong place) is never echoed with its secret."""
    with pytest.raises(ConfigError) as info:
        normalize_database_url(bad)
    assert "hunter2" not in str(info.value)


def test_dotenv_that_is_not_utf8_is_one_config_error_naming_the_file(tmp_path: Path) -> None:
    """A .env with Latin-1 bytes raises ConfigError (exit 2) naming the file, not a traceback."""
    dotenv = tmp_path / ".env"
    dotenv.write_bytes(b"POSTGRES_USER=trader\nPOSTGRES_PASSWORD=caf\xe9\n")
    with pytest.raises(ConfigError) as info:
        load_settings(environ={}, dotenv_path=dotenv)
    assert str(dotenv) in str(info.value) and "UTF-8" in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_precedence_flag_over_env_over_dotenv(tmp_path: Path) -> None:
    """--database-url beats the environment, which beats .env; nothing at all means embedded."""
    dotenv = tmp_path / ".env"
    dotenv.write_text("BINPRICE_DATABASE_URL=postgresql://dotenv/db\n")
    env = {"DATABASE_URL": "postgres://env/db"}
    assert load_settings("postgresql://flag/db", environ=env, dotenv_path=dotenv).database_url == (
        "postgresql://flag/db"
    )
    assert load_settings(environ=env, dotenv_path=dotenv).database_url == "postgresql://env/db"
    assert load_settings(environ={}, dotenv_path=dotenv).database_url == "postgresql://dotenv/db"
    settings = load_settings(environ={}, dotenv_path=tmp_path / "missing")
    assert settings.embedded and settings.database_url is None


def test_binprice_database_url_beats_database_url() -> None:
    """The binprice-specific variable wins over the generic one."""
    env = {"DATABASE_URL": "postgresql://generic/db", "BINPRICE_DATABASE_URL": "postgresql://bp/db"}
    assert load_settings(environ=env, dotenv_path=Path("/nonexistent")).database_url == (
        "postgresql://bp/db"
    )


def test_original_design_dotenv_works_as_it_is(tmp_path: Path) -> None:
    """POSTGRES_USER/PASSWORD/DB with DB_HOST/DB_PORT become a URL; odd passwords are quoted."""
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# original design\n"
        "POSTGRES_USER=trader\n"
        'POSTGRES_PASSWORD="p@ss:word/#1"\n'
        "export POSTGRES_DB=prices\n"
        "DB_HOST=localhost\n"
        "DB_PORT=5433  # compose port\n"
    )
    settings = load_settings(environ={}, dotenv_path=dotenv)
    assert settings.database_url == "postgresql://trader:p%40ss%3Aword%2F%231@localhost:5433/prices"
    assert "p@ss" not in redact(settings.database_url or "")
    assert "p%40ss" not in redact(settings.database_url or "")


def test_read_dotenv_skips_comments_and_blank_lines(tmp_path: Path) -> None:
    """Comments, blank lines and lines without '=' are ignored."""
    path = tmp_path / ".env"
    path.write_text("\n# c\nA=1\nnot a pair\nB='two words'\n")
    assert read_dotenv(path) == {"A": "1", "B": "two words"}


def test_default_data_dir_matches_platformdirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The data directory computed without platformdirs is the one platformdirs gives."""
    from platformdirs import user_data_path

    from binprice.settings import default_data_dir

    monkeypatch.delenv("BINPRICE_DATA_DIR", raising=False)
    for xdg in (None, "/srv/xdg-data"):
        if xdg is None:
            monkeypatch.delenv("XDG_DATA_HOME", raising=False)
        else:
            monkeypatch.setenv("XDG_DATA_HOME", xdg)
        assert default_data_dir() == user_data_path("binprice", appauthor=False)
    monkeypatch.setenv("BINPRICE_DATA_DIR", "/tmp/somewhere")
    assert default_data_dir() == Path("/tmp/somewhere")


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:hunter2@h/db",
        "postgresql://u@h/db?password=hunter2",
        "postgresql://u:hunter%202@h/db",
        "host=h user=u password='hunter 2'",
    ],
    ids=["userinfo", "query", "encoded", "keyword"],
)
def test_driver_errors_never_carry_the_password(url: str) -> None:
    """database_error (every connection path's, ingest's writers included) masks a password
    that a driver message repeats, in whatever form the connection string held it."""
    from binprice.db import database_error

    secret = "hunter 2" if " " in url or "%20" in url else "hunter2"
    message = str(database_error(url, RuntimeError(f"auth failed for {url!r} ({secret})")))
    assert "hunter" not in message
    assert message.startswith("cannot reach PostgreSQL at h")


@pytest.mark.parametrize(
    ("line", "value"),
    [
        ('POSTGRES_PASSWORD="p w" # note', "p w"),
        ("POSTGRES_PASSWORD='p w' # note", "p w"),
        ('POSTGRES_PASSWORD="say \\"hi\\""', 'say "hi"'),
        ('POSTGRES_PASSWORD="two\\nlines"', "two\nlines"),
        ("POSTGRES_PASSWORD='back\\nslash'", "back\\nslash"),
        ('POSTGRES_PASSWORD="first\nsecond"', "first\nsecond"),
        ("export POSTGRES_PASSWORD=s3cret", "s3cret"),
        ("POSTGRES_PASSWORD = spaced", "spaced"),
        ("POSTGRES_PASSWORD=a#b", "a#b"),
        ("POSTGRES_PASSWORD=pa${HOME}ss", "pa${HOME}ss"),
        ('POSTGRES_PASSWORD="pa${HOME:-x}ss"', "pa${HOME:-x}ss"),
    ],
    ids=["double-quoted-comment", "single-quoted-comment", "escaped-quote", "escaped-newline",
         "single-quotes-literal", "multi-line", "export", "spaces-around-equals", "hash-in-value",
         "no-interpolation", "no-interpolation-quoted"],
)  # fmt: skip
def test_dotenv_values_are_read_as_python_dotenv_reads_them(
    tmp_path: Path, line: str, value: str
) -> None:
    """Quotes, escapes inside double quotes, `export`; `${…}` is never interpolated."""
    path = tmp_path / ".env"
    path.write_text(f"HOME=/elsewhere\n{line}\n")
    assert read_dotenv(path)["POSTGRES_PASSWORD"] == value


def test_dotenv_lines_it_cannot_read_are_skipped_without_a_word(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A bare name and an unparseable line are left out, and nothing is logged about them."""
    path = tmp_path / ".env"
    path.write_text("BARE\nnot a pair\nA=1\n")
    with caplog.at_level("DEBUG"):
        assert read_dotenv(path) == {"A": "1"}
    assert not caplog.records


def test_dotenv_never_takes_values_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL built from .env holds `${…}` as written, percent-encoded, whatever is set."""
    monkeypatch.setenv("SECRET", "leaked")
    dotenv = tmp_path / ".env"
    dotenv.write_text("POSTGRES_USER=trader\nPOSTGRES_PASSWORD=x${SECRET}\n")
    url = load_settings(environ={}, dotenv_path=dotenv).database_url
    assert url == "postgresql://trader:x%24%7BSECRET%7D@127.0.0.1:5433/trader"
