"""Where a run starts: after the last id stored or spooled, with every known gap queued.

Four sources of gaps are worked out before the first frame is read:

- gaps an earlier run recorded and left open (fetched again, only their still-missing ids);
- the spool of a run that died: trades it received but never committed may reveal gaps whose
  rows it never wrote, so they are worked out again from the spooled ids themselves;
- holes in the stored ids that nobody recorded (rows deleted by hand, a spool lost with its
  disk): the stored ids since each symbol's checkpoint are checked against the recorded gaps
  (cheaply, through the per-minute rollup), every unaccounted hole is recorded and fetched, and
  the checkpoint moves to the highest stored id;
- the downtime itself, which the first streamed frame reveals — or, for a symbol that stays
  quiet, the reconciler's question to the exchange.
"""

from __future__ import annotations

import asyncio
from array import array
from collections.abc import Iterable

from binprice.completeness.gapkeeper import GapKeeper
from binprice.events import EventKind
from binprice.exchange.protocol import SeriesRecord
from binprice.ingest.recorder import Recorder
from binprice.ingest.tracker import Tracker
from binprice.kinds import TradeKind
from binprice.markets import Market


def spooled_extent(
    chunks: Iterable[list[SeriesRecord]], last_stored: dict[str, int]
) -> dict[str, tuple[int, list[tuple[int, int]]]]:
    """Per symbol, for spooled trades above the last stored id: the highest spooled id and the
    ranges between the last stored id and it that the spool does not hold."""
    ids: dict[str, array[int]] = {}
    for chunk in chunks:
        for trade in chunk:
            base = last_stored.get(trade.symbol)
            if base is None or trade.trade_id > base:
                ids.setdefault(trade.symbol, array("q")).append(trade.trade_id)
    out: dict[str, tuple[int, list[tuple[int, int]]]] = {}
    for symbol, found in ids.items():
        ordered = sorted(set(found))
        base = last_stored.get(symbol)
        prev = ordered[0] - 1 if base is None else base
        holes = []
        for tid in ordered:
            if tid > prev + 1:
                holes.append((prev + 1, tid - 1))
            prev = tid
        out[symbol] = (ordered[-1], holes)
    return out


async def resume(
    url: str,
    tracker: Tracker,
    gaps: GapKeeper,
    recorder: Recorder,
    symbols: list[str],
    *,
    last_stored: dict[str, int],
    spooled: Iterable[list[SeriesRecord]],
) -> None:
    """Start tracking `symbols` where the last runs left them, every known gap queued: after
    the highest id stored, spooled, or inside a gap left open (a stop's recorded tail)."""
    extent = spooled_extent(spooled, last_stored)
    open_tops = await gaps.resume(symbols)
    for symbol in symbols:
        stored = last_stored.get(symbol)
        top = extent.get(symbol, (None, []))[0]
        known = [i for i in (stored, top, open_tops.get(symbol)) if i is not None]
        tracker.start(symbol, max(known) if known else None)
        recorder.resumed(symbol, stored)
    for symbol in symbols:
        for first, last in extent.get(symbol, (None, []))[1]:
            gaps.open(symbol, first, last, why=" (found in the spool of an earlier run)")
    market, kind = gaps.rows.market, gaps.rows.kind
    holes = await asyncio.to_thread(_unaccounted_since_checkpoints, url, symbols, market, kind)
    for symbol, first, last in holes:
        gaps.open(
            symbol,
            first,
            last,
            why=" (a hole in the stored trades that no gap recorded)",
            kind=EventKind.REPAIRED,
        )
    # The holes' rows are committed before the checkpoint moves past them.
    await gaps.flush()
    await asyncio.to_thread(_move_checkpoints, url, last_stored, market, kind)


def _unaccounted_since_checkpoints(
    url: str, symbols: list[str], market: Market, kind: TradeKind
) -> list[tuple[str, int, int]]:
    from binprice.db import connect
    from binprice.db.gaps import checkpoint_starts, verify_gaps

    with connect(url) as conn:
        starts = checkpoint_starts(conn, symbols, market=market, kind=kind)
        result = verify_gaps(conn, symbols, starts=starts, market=market, kind=kind)
    return [(s.symbol, a, b) for s in result.symbols for a, b in s.unaccounted_ranges]


def _move_checkpoints(
    url: str, last_stored: dict[str, int], market: Market, kind: TradeKind
) -> None:
    from binprice.db import connect
    from binprice.db.gaps import set_checkpoints

    if last_stored:
        with connect(url) as conn:
            set_checkpoints(conn, last_stored, market=market, kind=kind)
