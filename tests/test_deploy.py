"""The Dockerfile, .dockerignore and the systemd unit, read as Docker and systemd read them (no
Docker engine or systemd runs here); the image's healthcheck command is run for real."""

from __future__ import annotations

import configparser
import http.server
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: `binprice ingest` ends within this long of SIGINT/SIGTERM (see binprice.ingest.pipeline).
INGEST_STOP_BUDGET_SECONDS = 5
UNIT = REPO / "deploy" / "binprice-ingest.service"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile: comments dropped, continuations joined."""
    joined, pending = [], ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        joined.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    out = []
    for text in joined:
        word, _, rest = text.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages() -> list[list[tuple[str, str]]]:
    """The instructions of each build stage, FROM first."""
    found: list[list[tuple[str, str]]] = []
    for instruction in instructions():
        if instruction[0] == "FROM":
            found.append([])
        if found:
            found[-1].append(instruction)
    return found


def dockerfile_env() -> dict[str, str]:
    """ENV of the final stage (`KEY=value` pairs)."""
    env = {}
    for word, rest in stages()[-1]:
        if word == "ENV":
            env.update(pair.split("=", 1) for pair in rest.split())
    return env


def _one(stage: list[tuple[str, str]], word: str) -> str:
    found = [rest for w, rest in stage if w == word]
    assert len(found) == 1, f"{word}: {found}"
    return found[0]


def _exec_form(rest: str) -> list[str]:
    """The JSON array of an exec-form instruction; a shell-form one fails the test."""
    value = json.loads(rest)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), rest
    return value


def test_image_builds_the_wheel_then_installs_it_into_a_slim_python_311() -> None:
    """Two stages: the first builds binprice's wheel, the final one (a slim Python 3.11)
    copies only the wheel from it and pip-installs it."""
    build, final = stages()[0], stages()[-1]
    assert len(stages()) == 2
    assert re.fullmatch(r"\S+ AS build", _one(build, "FROM"))
    assert any(w == "RUN" and "pip wheel" in rest and "--no-deps" in rest for w, rest in build)
    arg = dict(rest.split("=", 1) for w, rest in instructions() if w == "ARG")
    base = _one(final, "FROM").replace("${PYTHON_IMAGE}", arg["PYTHON_IMAGE"])
    assert re.fullmatch(r"python:3\.11-slim(-\w+)?", base)
    copies = [rest for w, rest in final if w == "COPY"]
    assert copies == ["--from=build /dist/ /tmp/dist/"]
    assert any(w == "RUN" and "pip install" in r and "/tmp/dist/*.whl" in r for w, r in final)


def test_image_runs_binprice_ingest_as_pid_1_and_not_as_root() -> None:
    """Exec-form ENTRYPOINT/CMD (SIGTERM reaches binprice, no shell in between) making
    `binprice ingest`, a numeric non-root USER, STOPSIGNAL SIGTERM."""
    final = stages()[-1]
    command = _exec_form(_one(final, "ENTRYPOINT")) + _exec_form(_one(final, "CMD"))
    assert command == ["binprice", "ingest"]
    user = _one(final, "USER")
    assert user.split(":")[0] not in ("root", "0")
    made = next(r for w, r in final if w == "RUN" and "useradd" in r)
    uid, gid = re.search(r"--uid (\d+)", made), re.search(r"--gid (\d+)", made)
    assert uid and gid and user == f"{uid[1]}:{gid[1]}"
    assert _one(final, "STOPSIGNAL") == "SIGTERM"


def test_image_healthcheck_asks_healthz_with_urllib_on_the_metrics_port() -> None:
    """HEALTHCHECK: exec form, Python's urllib (the slim image has no curl), /healthz on
    $BINPRICE_METRICS_PORT, which the image sets and EXPOSEs."""
    final = stages()[-1]
    health = _one(final, "HEALTHCHECK")
    options, _, command = health.partition(" CMD ")
    assert "--start-period=" in options and "--timeout=" in options
    argv = _exec_form(command)
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2] and "curl" not in health
    assert "/healthz" in argv[2] and "BINPRICE_METRICS_PORT" in argv[2]
    port = dockerfile_env()["BINPRICE_METRICS_PORT"]
    assert _one(final, "EXPOSE") == port
    assert _exec_form(_one(final, "VOLUME")) == [dockerfile_env()["BINPRICE_DATA_DIR"]]


def healthcheck_argv() -> list[str]:
    command = _one(stages()[-1], "HEALTHCHECK").partition(" CMD ")[2]
    return [sys.executable if arg == "python" else arg for arg in _exec_form(command)]


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        code = self.status if self.path == "/healthz" else 404
        body = json.dumps({"ok": code == 200}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[http.server.HTTPServer, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = http.server.HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()


def _probe(port: int) -> int:
    env = {**os.environ, "BINPRICE_METRICS_PORT": str(port)}
    done = subprocess.run(healthcheck_argv(), env=env, capture_output=True, timeout=30)
    return done.returncode


def test_the_image_healthcheck_passes_on_200_and_fails_on_503_or_silence(
    health_server: tuple[http.server.HTTPServer, type[_Health]],
) -> None:
    """The HEALTHCHECK command itself, run here: exit 0 on 200, non-zero on 503 and when
    nothing listens on the port."""
    server, handler = health_server
    port = server.server_address[1]
    assert _probe(port) == 0
    handler.status = 503
    assert _probe(port) != 0
    server.shutdown()
    server.server_close()
    assert _probe(port) != 0


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_build() -> None:
    """.env (the database password) and the local venv and git never reach the context; what
    the wheel is built from does."""
    ignored = {
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".env", ".git", ".venv"} <= ignored
    copied = {source for w, rest in stages()[0] if w == "COPY" for source in rest.split()[:-1]}
    assert copied == {"pyproject.toml", "README.md", "src", "alembic"}
    assert not copied & ignored


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def _timespan(value: str) -> float:
    """A systemd time span (`20s`, `1min 30s`, `20`) in seconds."""
    units = {"min": 60, "s": 1, "ms": 0.001, "": 1}
    parts = re.findall(r"(\d+)\s*(min|ms|s|)", value)
    assert parts, value
    return sum(int(n) * units[u] for n, u in parts)


def test_systemd_unit_restarts_always_and_stops_with_sigint_within_its_budget() -> None:
    """Restart=always; KillSignal=SIGINT (what Ctrl+C sends); TimeoutStopSec longer than
    binprice's 5 s stop budget; `binprice ingest` from an absolute path, as a dedicated user,
    configured from an EnvironmentFile."""
    service = _unit()["Service"]
    assert service["Restart"] == "always"
    assert service["KillSignal"] == "SIGINT"
    assert _timespan(service["TimeoutStopSec"]) > INGEST_STOP_BUDGET_SECONDS
    program, *args = service["ExecStart"].split()
    assert Path(program).is_absolute() and program.endswith("/binprice") and args == ["ingest"]
    assert service["User"] not in ("root", "0") and service["Group"]
    assert service["EnvironmentFile"].startswith("/")
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


def test_systemd_unit_is_hardened_and_writes_only_its_data_directory() -> None:
    """ProtectSystem=strict with the data directory (BINPRICE_DATA_DIR, the spool) as the only
    ReadWritePaths; NoNewPrivileges, no capabilities, private /tmp."""
    service = _unit()["Service"]
    assert service["ProtectSystem"] == "strict"
    assert service["NoNewPrivileges"] == "true"
    assert service["PrivateTmp"] == "true" and service["ProtectHome"] == "true"
    assert service["CapabilityBoundingSet"] == ""
    data_dir = service["Environment"].removeprefix("BINPRICE_DATA_DIR=")
    assert service["ReadWritePaths"].split() == [data_dir]
    assert service["WorkingDirectory"] == data_dir
    assert f"/var/lib/{service['StateDirectory']}" == data_dir


def test_the_unit_environment_example_sets_what_the_service_needs() -> None:
    """The example EnvironmentFile names the database, the symbols and the metrics port."""
    lines = (REPO / "deploy" / "binprice-ingest.env.example").read_text().splitlines()
    keys = {line.split("=", 1)[0] for line in lines if line and not line.startswith("#")}
    assert keys == {"BINPRICE_DATABASE_URL", "BINPRICE_SYMBOLS", "BINPRICE_METRICS_PORT"}
