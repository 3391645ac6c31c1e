"""docker-compose.yml, checked statically (no Docker engine runs here)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from binprice.settings import load_settings, read_dotenv

REPO = Path(__file__).resolve().parents[1]


def _substitute(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} / ${VAR:?msg} / $$ interpolation, enough for this file."""

    def repl(match: re.Match[str]) -> str:
        name, op, arg = match.group(1), match.group(2), match.group(3)
        if env.get(name):
            return env[name]
        if op == ":-":
            return arg or ""
        raise AssertionError(f"{name} is required by docker-compose.yml: {arg}")

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", repl, value).replace("$$", "$")


def test_compose_defines_db_service_with_healthcheck_and_named_volume() -> None:
    """Service `db`: a current postgres image, loopback-only port, healthcheck, named volume."""
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    db = compose["services"]["db"]
    assert re.fullmatch(r"postgres:(1[6-9])(\.\d+)?(-\w+)?", db["image"])
    assert "test" in db["healthcheck"]
    volume = db["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert all(p.startswith("127.0.0.1:") for p in db["ports"])


def test_compose_and_env_example_agree_with_the_settings_loader() -> None:
    """Port, user and database of compose (after .env.example) are what binprice connects to."""
    env = read_dotenv(REPO / ".env.example")
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    db = compose["services"]["db"]
    host_ip, host_port, container_port = _substitute(db["ports"][0], env).split(":")
    user = _substitute(db["environment"]["POSTGRES_USER"], env)
    database = _substitute(db["environment"]["POSTGRES_DB"], env)
    password = _substitute(db["environment"]["POSTGRES_PASSWORD"], env)
    assert container_port == "5432"
    url = load_settings(environ={}, dotenv_path=REPO / ".env.example").database_url
    assert url == f"postgresql://{user}:{password}@{host_ip}:{host_port}/{database}"
