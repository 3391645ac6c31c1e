"""What `binprice gaps` shows: recorded gaps, the completeness check and the repair (a Rich
progress bar per gap on a terminal, one line per finished gap elsewhere).

Machine formats have stable keys in a fixed order and timestamps as ISO 8601 UTC with
milliseconds and ``Z``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, timedelta
from typing import TYPE_CHECKING

from binprice.cli._app import err
from binprice.cli.views.queries import records_of
from binprice.cli.views.text import aligned
from binprice.kinds import TradeKind, parse_kind
from binprice.timespec import format_timestamp

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from binprice import RepairProgress, RepairResult
    from binprice.db.gaps import Gap, SymbolCheck, Verification


def gaps_json(gaps: Sequence[Gap]) -> str:
    """A JSON array, one object per gap, stable keys."""
    return json.dumps(
        [
            {
                "symbol": g.symbol,
                "first_id": g.first_id,
                "last_id": g.last_id,
                "size": g.size,
                "state": g.state,
                "detected_at": format_timestamp(g.detected_at),
                "filled_at": None if g.filled_at is None else format_timestamp(g.filled_at),
            }
            for g in gaps
        ],
        indent=2,
    )


def gaps_text(gaps: Sequence[Gap]) -> str:
    """Aligned plain text, one gap per line, that fits 80 columns: detected to the minute
    (UTC), filled as the time it took after that (--json has both times exactly)."""
    header = ("symbol", "first_id", "last_id", "size", "state", "detected (UTC)", "filled")
    rows = [header] + [
        (
            g.symbol,
            str(g.first_id),
            str(g.last_id),
            f"{g.size:,}",
            g.state,
            g.detected_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            "-" if g.filled_at is None else _after(g.filled_at - g.detected_at),
        )
        for g in gaps
    ]
    return aligned(rows, right={1, 2, 3})


def _after(took: timedelta) -> str:
    """How long after detection a gap was filled, in its two largest units: `+3m12s`."""
    from binprice.cli.views.queries import format_ago

    return "+" + format_ago(took).removesuffix(" ago")


def verification_json(result: Verification) -> str:
    """The check as one JSON object: ok, window, and per symbol its holes."""
    return json.dumps(
        {
            "ok": result.ok,
            "against_exchange": result.against_exchange,
            "unasked_holes": result.unasked_holes,
            "start": None if result.start is None else format_timestamp(result.start),
            "end": None if result.end is None else format_timestamp(result.end),
            "symbols": [
                {
                    "symbol": s.symbol,
                    "trades": s.trades,
                    "first_id": s.first_id,
                    "last_id": s.last_id,
                    "missing": sum(h.size for h in s.holes),
                    "unaccounted": s.unaccounted_in_holes,
                    "open_gaps": s.open_gaps,
                    "exchange_last_id": s.exchange_last_id,
                    "disproved_holes": [{"first_id": a, "last_id": b} for a, b in s.disproved],
                    "duplicate_ids": s.duplicate_ids,
                    "duplicates": _duplicates_json(s),
                    "tail": None
                    if s.tail is None
                    else {
                        "first_id": s.tail.first_id,
                        "last_id": s.tail.last_id,
                        "size": s.tail.size,
                        "accounted": s.tail.accounted,
                        "since": None if s.tail_since is None else format_timestamp(s.tail_since),
                    },
                    "behind": s.behind,
                    "holes": [
                        {
                            "first_id": h.first_id,
                            "last_id": h.last_id,
                            "size": h.size,
                            "accounted": h.accounted,
                        }
                        for h in s.holes
                    ],
                }
                for s in result.symbols
            ],
        },
        indent=2,
    )


def _duplicates_json(check: SymbolCheck) -> list[dict[str, object]]:
    listed = () if check.duplicates is None else check.duplicates.listed
    return [
        {
            "trade_id": d.trade_id,
            "copies": [
                {"timestamp": format_timestamp(t), "price": format(p, "f")} for t, p in d.copies
            ],
        }
        for d in listed
    ]


#: How many ids stored twice the text names per symbol (--json lists more).
DUPLICATES_SHOWN = 5


def _duplicates_text(check: SymbolCheck) -> list[str]:
    if check.duplicates is None:
        return []
    lines = [
        f"  stored twice: {check.symbol} id {d.trade_id}: "
        + ", ".join(f"{format_timestamp(t)} at {format(p, 'f')}" for t, p in d.copies)
        for d in check.duplicates.listed[:DUPLICATES_SHOWN]
    ]
    more = check.duplicates.count - len(lines)
    if more > 0:
        lines.append(
            f"  ... and {more:,} more ids of {check.symbol} stored twice (--json lists "
            f"{len(check.duplicates.listed):,})"
        )
    return lines


def _fetchers(kind: str) -> str:
    """The commands that fetch missing ids of `kind`."""
    if parse_kind(kind) is TradeKind.AGG_TRADES:
        return "`binprice ingest --stream aggTrade` or `binprice gaps --repair --kind aggTrades`"
    return "`binprice ingest` or `binprice gaps --repair`"


def no_gaps(kind: str) -> str:
    """The line of `gaps` when no gap of `kind` is recorded, and what checks the ids."""
    if parse_kind(kind) is TradeKind.AGG_TRADES:
        return (
            "no gaps of aggregate ids recorded (`binprice gaps --verify --kind aggTrades` checks "
            "the stored aggregate ids)"
        )
    return "no gaps recorded (`binprice gaps --verify` checks the stored trade ids)"


def verification_text(result: Verification, kind: str = "trades") -> str:
    """One line per symbol, then one per unaccounted hole (each folded to 80 columns); the
    records named by `kind`."""
    noun = records_of(kind)
    lines = []
    for s in result.symbols:
        span = f"no {noun}" if s.first_id is None else f"ids {s.first_id}..{s.last_id}"
        verdict = "ok" if s.ok else "NOT OK"
        tail = ""
        if result.against_exchange:
            if s.exchange_last_id is None:
                tail = f", the exchange has no {noun}"
            elif not s.behind:
                tail = f", up to date with the exchange (id {s.exchange_last_id})"
            else:
                since = "" if s.tail_since is None else f" since {format_timestamp(s.tail_since)}"
                tail = (
                    f"; the exchange moved on since the last capture: {s.behind:,} {noun}"
                    f"{since}, up to id {s.exchange_last_id} ({_fetchers(kind)} fetches them)"
                )
        lines.append(
            f"{s.symbol}: {verdict}: {s.trades:,} {noun}, {span}, {len(s.holes)} holes "
            f"({sum(h.size for h in s.holes):,} ids missing, "
            f"{s.unaccounted_in_holes:,} unaccounted), "
            f"{s.open_gaps} open gaps{tail}"
            + (f", {s.duplicate_ids:,} ids stored twice" if s.duplicate_ids else "")
        )
        lines.extend(_duplicates_text(s))
        for a, b in (r for h in s.holes for r in h.unaccounted):
            lines.append(f"  unaccounted: {s.symbol} {a}..{b} ({b - a + 1:,} ids)")
        for a, b in s.disproved:
            lines.append(
                f"  recorded as a hole, but the exchange has {noun} from {a}: {s.symbol} "
                f"{a}..{b} ({_fetchers(kind)} fetches them)"
            )
    if result.unasked_holes:
        lines.append(key_hint(0, result.unasked_holes))
    return "".join(_fold(line) + "\n" for line in lines)


def key_hint(open_ids: int, unasked_holes: int) -> str:
    """One line: what was left for want of the API key a futures market's historicalTrades
    needs, and what to do."""
    parts = []
    if open_ids:
        parts.append(f"{open_ids:,} ids older than the newest trades stay open")
    if unasked_holes:
        parts.append(f"{unasked_holes:,} recorded holes were not asked about again")
    return (
        f"{' and '.join(parts)}: only historicalTrades reaches them, and on the futures markets "
        "it needs an API key (set BINPRICE_API_KEY or give --api-key), or import the days' "
        "archive files"
    )


#: The width verification lines are folded to, so an 80-column terminal never breaks a word.
TEXT_WIDTH = 80


def _fold(line: str) -> str:
    """A long line folded between words, continued with the first line's indent plus two."""
    import textwrap

    indent = " " * (len(line) - len(line.lstrip()) + 2)
    return textwrap.fill(
        line, TEXT_WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False
    )


class RepairView:
    """A Rich progress bar per gap on a terminal; one line per finished gap elsewhere."""

    def __init__(self, live: bool, kind: str = "trades") -> None:
        self._live = live
        self._noun = records_of(kind)
        self._bar: Progress | None = None
        self._tasks: dict[tuple[str, int, int], TaskID] = {}

    def __enter__(self) -> RepairView:
        if self._live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self._bar = Progress(
                "{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=False,
            )
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, p: RepairProgress) -> None:
        done = p.fetched + p.absent
        if self._bar is None:
            if p.done:
                err(
                    f"{p.symbol} {p.first_id}..{p.last_id}: {p.fetched:,} {self._noun} fetched, "
                    f"{p.absent:,} absent on the exchange"
                )
            return
        key = (p.symbol, p.first_id, p.last_id)
        if key not in self._tasks:
            self._tasks[key] = self._bar.add_task(
                f"{p.symbol} {p.first_id}..{p.last_id}", total=p.last_id - p.first_id + 1
            )
        self._bar.update(self._tasks[key], completed=done)


def repair_text(result: RepairResult, kind: str = "trades") -> str:
    """One line per gap, then the totals; the records named by `kind`."""
    noun = records_of(kind)
    if not result.gaps:
        done = "nothing to repair: every stored id and tail is accounted for\n"
        return done + (key_hint(0, result.unasked_holes) + "\n" if result.unasked_holes else "")
    lines = [
        f"{g.symbol} {g.first_id}..{g.last_id} ({g.size:,} ids): {g.state}, {g.stored:,} {noun} "
        f"stored, {g.absent:,} absent on the exchange"
        for g in result.gaps
    ]
    lines.append(f"repaired {len(result.gaps)} gaps, {result.stored:,} {noun} stored")
    if result.needs_key or result.unasked_holes:
        lines.append(key_hint(result.needs_key, result.unasked_holes))
    return "".join(line + "\n" for line in lines)


def repair_json(result: RepairResult) -> str:
    """The repair as one JSON object: trades stored, and per gap its state."""
    return json.dumps(
        {
            "stored": result.stored,
            "needs_key": result.needs_key,
            "unasked_holes": result.unasked_holes,
            "gaps": [
                {
                    "symbol": g.symbol,
                    "first_id": g.first_id,
                    "last_id": g.last_id,
                    "size": g.size,
                    "state": g.state,
                    "stored": g.stored,
                    "absent": g.absent,
                    "needs_key": g.needs_key,
                }
                for g in result.gaps
            ],
        },
        indent=2,
    )
