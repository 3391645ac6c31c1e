"""docker-compose.yml, checked statically (no Docker engine runs here): `db`, and `ingest`
beside it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from binprice.settings import load_settings, read_dotenv
from tests.test_deploy import INGEST_STOP_BUDGET_SECONDS, dockerfile_env

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


def _compose() -> dict[str, Any]:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_ingest_service_waits_for_a_healthy_db_and_restarts() -> None:
    """Service `ingest`: built from this repository, started once `db` is healthy, restarted
    unless stopped, given time to stop cleanly, configured from .env."""
    compose = _compose()
    ingest = compose["services"]["ingest"]
    assert ingest["build"] == "."
    assert ingest["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert ingest["restart"] == "unless-stopped"
    assert ingest["env_file"] == ".env"
    assert ingest["command"][0] == "ingest"
    assert _seconds(ingest["stop_grace_period"]) > INGEST_STOP_BUDGET_SECONDS


def test_compose_ingest_connects_to_the_db_service_as_its_user() -> None:
    """BINPRICE_DATABASE_URL (after .env.example) names host `db`, its container port, user,
    password and database, and binprice's settings loader takes it as it is."""
    env = read_dotenv(REPO / ".env.example")
    compose = _compose()
    db = compose["services"]["db"]["environment"]
    ingest = compose["services"]["ingest"]["environment"]
    url = _substitute(ingest["BINPRICE_DATABASE_URL"], env)
    parts = urlsplit(url)
    assert (parts.hostname, parts.port) == ("db", 5432)
    assert parts.username == _substitute(db["POSTGRES_USER"], env)
    assert parts.password == _substitute(db["POSTGRES_PASSWORD"], env)
    assert parts.path == "/" + _substitute(db["POSTGRES_DB"], env)
    settings = load_settings(environ={"BINPRICE_DATABASE_URL": url}, dotenv_path=REPO / "none")
    assert settings.database_url == url


def test_compose_ingest_health_metrics_port_and_spool_volume() -> None:
    """The healthcheck asks /healthz on BINPRICE_METRICS_PORT with Python's urllib; the port
    is set and published on loopback only; the spool is a named volume at the image's data
    directory."""
    env = read_dotenv(REPO / ".env.example")
    compose = _compose()
    ingest = compose["services"]["ingest"]
    test = ingest["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert "urllib.request" in test[3] and "/healthz" in test[3]
    assert "BINPRICE_METRICS_PORT" in test[3]
    port = _substitute(ingest["environment"]["BINPRICE_METRICS_PORT"], env)
    assert port == env["BINPRICE_METRICS_PORT"]
    assert all(_substitute(p, env) == f"127.0.0.1:{port}:{port}" for p in ingest["ports"])
    volume, mount = ingest["volumes"][0].split(":")
    assert volume in compose["volumes"]
    assert mount == dockerfile_env()["BINPRICE_DATA_DIR"]
    assert _seconds(ingest["healthcheck"]["timeout"]) < _seconds(ingest["healthcheck"]["interval"])


def _seconds(value: str) -> float:
    """A compose duration such as `20s` or `1m30s` in seconds."""
    units = {"h": 3600, "m": 60, "s": 1}
    parts = re.findall(r"(\d+(?:\.\d+)?)([hms])", value)
    assert parts and "".join(n + u for n, u in parts) == value, value
    return sum(float(n) * units[u] for n, u in parts)
