"""A password with an unencoded ?, @, / or # in a database URL: refused in one line on every
output path, and neither it nor any piece of it is ever printed."""

from __future__ import annotations

import json
import re

import pytest

from binprice.conninfo import redact
from binprice.errors import ConfigError
from binprice.settings import normalize_database_url
from tests.conftest import run_binprice

#: (URL, its password): each mis-parsed differently by urlsplit and libpq.
UNENCODED = [
    ("postgresql://bob:Tr0ub?4dor@127.0.0.1/db", "Tr0ub?4dor"),
    ("postgresql://bob:Tr0ub@4dor@127.0.0.1/db", "Tr0ub@4dor"),
    ("postgresql://bob:1234?5678@127.0.0.1:5439/db", "1234?5678"),
    ("postgresql://bob:pa55/w0rd#x9z@127.0.0.1/db", "pa55/w0rd#x9z"),
    ("postgresql://bob:h4sh#tag99@127.0.0.1:5439/db", "h4sh#tag99"),
]
IDS = ["question-mark", "at-sign", "question-mark-digits", "slash-and-hash", "hash"]

#: Every output path the issue names: a plain error, ingest's JSON log, status and gaps JSON.
COMMANDS = [
    ("latest", "BTCUSDT"),
    ("ingest", "BTCUSDT", "--log-format", "json", "--max-trades", "1"),
    ("status", "--json"),
    ("gaps", "--json"),
]


def _pieces(password: str) -> list[str]:
    return [password, *(p for p in re.split(r"[?@/#:]", password) if p)]


@pytest.mark.parametrize(("url", "password"), UNENCODED, ids=IDS)
def test_redact_masks_an_unencoded_password_from_the_raw_text(url: str, password: str) -> None:
    """Everything between the user and the last '@' is masked, whatever a parser thinks."""
    masked = redact(url)
    assert masked.startswith("postgresql://bob:***@127.0.0.1")
    assert not [piece for piece in _pieces(password) if piece in masked]


@pytest.mark.parametrize(("url", "password"), UNENCODED, ids=IDS)
def test_an_unencoded_password_is_refused_saying_how_to_encode_it(url: str, password: str) -> None:
    """ConfigError: percent-encode ? @ / #; no piece of the password in the message."""
    with pytest.raises(ConfigError) as info:
        normalize_database_url(url)
    message = str(info.value)
    assert "percent-encoded (? as %3F, @ as %40, / as %2F, # as %23)" in message
    assert not [piece for piece in _pieces(password) if piece in message]


def test_encoded_passwords_and_query_users_are_still_accepted() -> None:
    """The same passwords percent-encoded, and an '@' in a query parameter, pass unchanged."""
    for url in (
        "postgresql://bob:Tr0ub%3F4dor@h/db",
        "postgresql://bob:Tr0ub%404dor@h:5439/db",
        "postgresql://bob:pa55%2Fw0rd%23x9z@h/db",
        "postgresql://h:5432/db?user=bob@corp&password=s3cr3t",
    ):
        assert normalize_database_url(url) == url


@pytest.mark.parametrize("command", COMMANDS, ids=[c[0] for c in COMMANDS])
@pytest.mark.parametrize(("url", "password"), UNENCODED, ids=IDS)
def test_no_output_path_prints_the_password_or_a_piece_of_it(
    url: str, password: str, command: tuple[str, ...], clean_env: dict[str, str]
) -> None:
    """One error line (`error: …`, or with a JSON log the `fatal` record), exit status 2, and no
    piece of the password on stdout or stderr."""
    done = run_binprice("--database-url", url, *command, env=clean_env)
    output = done.stdout + done.stderr
    assert not [piece for piece in _pieces(password) if piece in output], output
    assert done.returncode == 2, output
    (line,) = done.stderr.splitlines()
    logged = command[0] == "ingest"  # its errors are lines of its --log-format json
    message = json.loads(line)["message"] if logged else line.removeprefix("error: ")
    assert line.startswith("{" if logged else "error: ")
    assert "percent-encoded" in message
