"""Tables a person reads at 80 columns or wider: no price, time or count is cut to `…`."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from rich.console import Console

from binprice.cli.views import queries as render
from binprice.cli.views.ingest import live_table
from binprice.db.queries import At, Latest, Range
from binprice.ingest.stats import IngestStats

NOW = datetime(2026, 5, 28, 4, 13, 41, 983000, tzinfo=UTC)
RESULTS = {
    "latest": [Latest("BTCUSDT", Decimal("73109.30000000"), NOW, 6329162611)],
    "at": [At("ETHUSDT", Decimal("3812.12000000"), NOW, 2934712312, NOW, -1234)],
    "range": [
        Range(
            "BTCUSDT",
            NOW,
            NOW,
            Decimal("73109.30000000"),
            Decimal("73200.01000000"),
            Decimal("73001.99000000"),
            Decimal("73150.00000000"),
            NOW,
            NOW,
            183_456,
            Decimal("1234.56789012"),
            Decimal("73111.1234567890123456789012"),
        )
    ],
}


@pytest.mark.parametrize("width", [80, 120])
@pytest.mark.parametrize("kind", sorted(RESULTS))
def test_query_results_never_cut_a_value(
    kind: str, width: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the width, every value is printed whole: a table that does not fit becomes
    one block per result."""
    results = RESULTS[kind]
    out = io.StringIO()
    monkeypatch.setattr(
        "rich.console.Console",
        lambda **kw: Console(file=out, width=width, force_terminal=True, color_system=None),
    )
    render.print_terminal(results, now=NOW)
    text = out.getvalue()
    assert "…" not in text
    for value in render.records(results)[0].values():
        assert str(value) in text, (kind, width, value)


@pytest.mark.parametrize("width", [80, 120])
def test_the_live_ingest_table_never_cuts_a_value(width: int) -> None:
    """The live view drops its least important columns on a narrow terminal (their totals go
    to the title) rather than cut a symbol, price or count."""
    stats = IngestStats()
    for symbol in ("BTCUSDT", "ETHUSDT", "1000SATSUSDT"):
        c = stats.symbol(symbol)
        c.stored, c.received, c.backfilled = 566_512, 566_512, 12_345
        c.last_price, c.lag_ms = Decimal("73109.30000000"), 4
    summary = stats.summary()
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True, color_system=None).print(
        live_table(summary.symbols, summary, width=width)
    )
    text = out.getvalue()
    assert "…" not in text
    assert "1000SATSUSDT" in text and "566,512" in text and "73109.30000000" in text
    assert max(len(line) for line in text.splitlines()) <= width
