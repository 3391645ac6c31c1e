"""Absurd durations on every command that takes one: one `error:` line and exit status 2."""

from __future__ import annotations

import pytest

from tests.conftest import run_binprice

TOO_LONG = "error: duration '{}' is out of range: at most 5200w (about 100 years)"

ABSURD = [
    (("range", "BTCUSDT", "--last", "110000w"), TOO_LONG.format("110000w")),
    (("candles", "BTCUSDT", "-i", "1m", "--last", "110000w"), TOO_LONG.format("110000w")),
    (("chart", "BTCUSDT", "--last", "110000w"), TOO_LONG.format("110000w")),
    (("export", "BTCUSDT", "-f", "csv", "--last", "110000w"), TOO_LONG.format("110000w")),
    (("gaps", "--verify", "--last", "110000w"), TOO_LONG.format("110000w")),
    (("watch", "BTCUSDT", "--window", "110000w", "-n", "1"), TOO_LONG.format("110000w")),
    (("db", "prune", "--older-than", "99999999w", "--yes"), TOO_LONG.format("99999999w")),
    (("at", "BTCUSDT", "--ts", "now", "--within", "99999999w"), TOO_LONG.format("99999999w")),
    (
        ("at", "BTCUSDT", "--ts", "-110000w"),
        "error: timestamp '-110000w': " + TOO_LONG.format("110000w").removeprefix("error: "),
    ),
    (
        ("range", "BTCUSDT", "--end", "0001-01-02", "--last", "1w"),
        "error: --last 1w before 0001-01-02T00:00:00.000Z starts before year 1",
    ),
    (
        ("watch", "BTCUSDT", "--every", "0s", "-n", "3"),
        "error: --every 0s is too short: at least 100ms",
    ),
    (
        ("watch", "BTCUSDT", "--every", "99ms", "-n", "3"),
        "error: --every 99ms is too short: at least 100ms",
    ),
]


@pytest.mark.parametrize(("args", "expected"), ABSURD, ids=[" ".join(a) for a, _ in ABSURD])
def test_absurd_durations_are_one_error_line_and_status_2(
    database_url: str, args: tuple[str, ...], expected: str
) -> None:
    """No traceback, no busy loop: the one line says what is allowed."""
    done = run_binprice("--database-url", database_url, *args)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines() == [expected], done.stderr


def test_the_longest_duration_and_the_shortest_watch_period_are_accepted(
    database_url: str,
) -> None:
    """5200w reaches back about a century; watch polls every 100ms."""
    done = run_binprice(
        "--database-url", database_url, "watch", "--window", "5200w", "--every", "100ms", "-n", "2"
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.splitlines()) == 2
