"""Settings: precedence, URL normalisation, the original design's .env, masking."""

from __future__ import annotations

from pathlib import Path

import pytest

from binprice.errors import ConfigError
from binprice.settings import load_settings, mask_url, normalize_database_url, read_dotenv

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


def test_mask_url_hides_only_the_password() -> None:
    """User, host, port and database stay readable."""
    assert mask_url("postgresql://bob:s3cr%40t@db.example:5433/prices") == (
        "postgresql://bob:***@db.example:5433/prices"
    )
    assert mask_url("postgresql://bob@h/db") == "postgresql://bob@h/db"


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
    assert "p@ss" not in mask_url(settings.database_url or "")


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
