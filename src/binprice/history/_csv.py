"""Archive CSV → COPY text, in blocks of whole lines. Pure: bytes in, bytes out.

Binance writes ``id,price,qty,quoteQty,time,isBuyerMaker,isBestMatch`` without a header, the
booleans as ``True``/``False``, ``time`` in milliseconds before 2025-01-01 and in microseconds
from then on. Decoding is the importer's only Python work per trade (about 1 µs; PostgreSQL
spends about 5 µs storing it), so it handles text, not values: one compiled regular expression
validates and splits a whole block (a C loop), and a list comprehension of f-strings reorders
the fields into ``trades`` COPY rows. Nothing goes through Decimal or float: price and quantity
are kept verbatim, which is exactly what live capture stores (the stream's ``"73109.30000000"``
becomes ``numeric`` ``73109.30000000``, scale kept). Blank lines are skipped.

The futures archives (docs/futures.md §6) write ``id,price,qty,quote_qty,time,is_buyer_maker``
(USD-M) or ``id,price,qty,base_qty,time,is_buyer_maker`` (COIN-M: ``qty`` in contracts, as
stored live; ``base_qty`` the coins, not stored), ``true``/``false``, times in ms, and a header
row in recent files: `CsvDecoder(market=...)` reads them with the same machinery, one field
fewer, and leads each COPY row with the market's number (`binprice.db.copy.copy_columns`).

The time unit is decided per value by magnitude, never by date: a 13-digit epoch is
milliseconds, a 16-digit one microseconds, floored to its millisecond by dropping the last three
digits (``floor(µs / 1000)``, what the stream's ``timeUnit=MICROSECOND`` maps to). Any other
length is refused: it would be a time before 2001 or after 2286 in either unit.

Memory and time stay linear whatever the file holds: a partial line is carried over to the
next chunk only up to `MAX_LINE_BYTES` (a file whose line runs on is refused there, not held
until its end), and blank lines are told from bad ones by one C-speed word count, not line by
line in Python (a zip of nothing but newlines inflates a thousandfold).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, datetime

from binprice.kinds import TradeKind
from binprice.markets import Market

#: The longest line carried from one chunk to the next. A Binance trade line is under 200
#: bytes (seven fields, the longest a 20-digit decimal); 4 KiB leaves room for any header or
#: hand-made variant while a line with no end is refused after a few KiB, not a gigabyte.
MAX_LINE_BYTES = 4096
#: Seconds → "YYYY-MM-DD HH:MM:SS" memo size; a block spans few distinct seconds.
_SECOND_CACHE_LIMIT = 4096
SECONDS_PER_DAY = 86_400
#: A positive decimal, Binance style ("73109.30000000", "0.00205000", "5"): two alternatives
#: that never backtrack (a lookahead for "some digit is not 0" costs a third of the decoding).
_POSITIVE = r"(?:[1-9][0-9]*(?:\.[0-9]+)?|0\.0*[1-9][0-9]*)"
_DECIMAL = r"[0-9]+(?:\.[0-9]+)?"
_BOOL = r"(?:True|False|true|false)"
#: A trade id fits PostgreSQL's bigint (19 digits); a longer one is not a trade.
_ID = r"[0-9]{1,19}"
#: One valid line: id, price > 0, qty > 0, quoteQty, time (s + ms [+ µs]), maker, best match.
#: Matching str is faster than bytes here, and the f-string that builds the row faster still.
_LINE = re.compile(
    rf"^({_ID}),({_POSITIVE}),({_POSITIVE}),{_DECIMAL},"
    rf"([0-9]{{10}})([0-9]{{3}})(?:[0-9]{{3}})?,({_BOOL}),{_BOOL}\r?$",
    re.MULTILINE,
)
#: A futures line: id, price > 0, qty > 0, quote_qty or base_qty, time (ms), maker.
_FUTURES_LINE = re.compile(
    rf"^({_ID}),({_POSITIVE}),({_POSITIVE}),{_DECIMAL},"
    rf"([0-9]{{10}})([0-9]{{3}})(?:[0-9]{{3}})?,({_BOOL})\r?$",
    re.MULTILINE,
)
#: An aggregate trade line (the `aggTrades` files): agg id, price > 0, qty > 0, first and last
#: trade id, time (s + ms [+ µs]), maker, and on Spot the best match (not stored, as for
#: trades: docs/aggregate-trades.md).
_AGG_LINE = re.compile(
    rf"^({_ID}),({_POSITIVE}),({_POSITIVE}),({_ID}),({_ID}),"
    rf"([0-9]{{10}})([0-9]{{3}})(?:[0-9]{{3}})?,({_BOOL}),{_BOOL}\r?$",
    re.MULTILINE,
)
_FUTURES_AGG_LINE = re.compile(
    rf"^({_ID}),({_POSITIVE}),({_POSITIVE}),({_ID}),({_ID}),"
    rf"([0-9]{{10}})([0-9]{{3}})(?:[0-9]{{3}})?,({_BOOL})\r?$",
    re.MULTILINE,
)
_FIELDS = ("id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch")
_AGG_FIELDS = ("a", "price", "qty", "f", "l", "time", "isBuyerMaker", "isBestMatch")
_FUTURES_FIELDS = ("id", "price", "qty", "quote_qty or base_qty", "time", "is_buyer_maker")
_CHECKS = (
    (_ID, "a trade id (up to 19 digits)"),
    (_POSITIVE, "a positive decimal"),
    (_POSITIVE, "a positive decimal"),
    (_DECIMAL, "a decimal"),
    (r"[0-9]{13}(?:[0-9]{3})?", "an epoch in ms (13 digits) or µs (16 digits)"),
    (_BOOL, "True or False"),
    (_BOOL, "True or False"),
)
_AGG_CHECKS = (_CHECKS[0], _CHECKS[1], _CHECKS[2], _CHECKS[0], _CHECKS[0], *_CHECKS[4:])
_EXCERPT = 80


class MalformedLine(ValueError):
    """A line that is not a Binance spot trade (or breaks the id order); names the line."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number:,}: {reason}")
        self.line_number = line_number


#: One line's fields as text: id, price, quantity, epoch seconds, milliseconds, maker.
Fields = tuple[str, str, str, str, str, str]


@dataclass(frozen=True, slots=True)
class Block:
    """Whole lines of one file, decoded."""

    #: COPY text rows for ``trades (symbol, trade_id, price, quantity, timestamp,
    #: is_buyer_maker)``; empty if every line was skipped.
    payload: bytes
    rows: int
    first_id: int | None
    last_id: int | None
    #: Id ranges missing between consecutive lines, inclusive: holes in the archive file.
    jumps: tuple[tuple[int, int], ...]
    #: CSV bytes this block consumed (skipped lines included), for progress.
    size: int
    #: With `CsvDecoder(fields=True)`: each trade's text fields instead of a payload, and
    #: their ids as integers (decoded for the order check already).
    fields: list[Fields] | None = None
    ids: list[int] | None = None


@dataclass(slots=True)
class CsvDecoder:
    """Decodes one file's CSV, fed in arbitrary chunks; keeps the id order across chunks.

    Lines with ids up to ``skip_through`` are validated and dropped (a resumed file). With
    ``fields`` the blocks carry each line's fields (for the compressed form, `_compact`)
    instead of COPY text.
    """

    symbol: str
    skip_through: int | None = None
    fields: bool = False
    #: The archive's market: its line shape, and the market number leading each COPY row.
    market: Market = Market.SPOT
    #: Trades, or aggregate trades (`agg_trades` COPY rows: `db.aggtrades.AGG_COLUMNS`).
    kind: TradeKind = TradeKind.TRADES
    lines: int = 0
    last_id: int | None = None
    _rest: bytes = b""
    _seconds: dict[str, str] = field(default_factory=dict)
    _days: dict[int, str] = field(default_factory=dict)
    _line: re.Pattern[str] = field(default=_LINE, init=False)
    _lead: str = field(default="", init=False)

    def __post_init__(self) -> None:
        # COPY control characters must never reach the stream (`_` is in futures contracts).
        if not self.symbol.replace("_", "").isalnum():
            raise ValueError(f"invalid symbol {self.symbol!r}")
        futures = self.market is not Market.SPOT
        if self.kind is TradeKind.AGG_TRADES:
            self._line = _FUTURES_AGG_LINE if futures else _AGG_LINE
        elif futures:
            self._line = _FUTURES_LINE
        if futures:
            self._lead = f"{self.market.number}\t"

    def feed(self, data: bytes) -> Block:
        """Decode the whole lines in what has arrived so far; keep a partial last line.

        Raises MalformedLine for a line longer than `MAX_LINE_BYTES` that has not ended yet.
        """
        cut = data.rfind(b"\n") + 1
        if cut == 0:  # no line ends here: the carried line grows, up to its limit
            self._rest += data[: MAX_LINE_BYTES + 1 - len(self._rest)]
            self._check_rest()
            return Block(b"", 0, None, None, (), 0)  # its bytes count when the line ends
        block = self._decode(self._rest + data[:cut] if self._rest else data[:cut])
        self._rest = data[cut : cut + MAX_LINE_BYTES + 1]
        self._check_rest()
        return block

    def finish(self) -> Block:
        """Decode a last line that has no newline (Binance ends files with one; not everyone)."""
        rest, self._rest = self._rest, b""
        return self._decode(rest + b"\n" if rest.strip() else b"")

    def _check_rest(self) -> None:
        if len(self._rest) > MAX_LINE_BYTES:
            raise MalformedLine(
                self.lines + 1,
                f"longer than {MAX_LINE_BYTES:,} bytes with no end (a trade line is under 200 "
                "bytes): not a Binance trades CSV; check where this zip came from",
            )

    def _decode(self, data: bytes) -> Block:
        size = len(data)
        try:
            text = data.decode("ascii")
        except UnicodeDecodeError as exc:
            line = self.lines + data.count(b"\n", 0, exc.start) + 1
            raise MalformedLine(line, "not ASCII text") from None
        if text.isspace():  # nothing but blank lines: skipped at memory speed
            self.lines += text.count("\n")
            return Block(b"", 0, None, None, (), size)
        if self.lines == 0 and text[:1].isalpha():
            text = self._skip_header(text)
        rows = self._line.findall(text)
        count = text.count("\n")
        # Every other line blank? Then its words are the trades (a bad line adds one at least).
        if len(rows) != count and len(rows) != len(text.split()):
            bad = self._first_bad_line(text)
            if bad is not None:
                raise bad
        first_line = self.lines + 1
        self.lines += count
        if not rows:
            return Block(b"", 0, None, None, (), size)
        ids = [int(r[0]) for r in rows]
        jumps = self._check_order(ids, first_line)
        self.last_id = ids[-1]
        if self.skip_through is not None and ids[0] <= self.skip_through:
            keep = bisect_right(ids, self.skip_through)
            rows, ids = rows[keep:], ids[keep:]
            jumps = tuple((a, b) for a, b in jumps if b > self.skip_through)
            if not rows:
                return Block(b"", 0, None, None, jumps, size)
        if self.fields:
            return Block(b"", len(rows), ids[0], ids[-1], jumps, size, rows, ids)
        return Block(self._encode(rows), len(rows), ids[0], ids[-1], jumps, size)

    def _skip_header(self, text: str) -> str:
        # Binance's spot files have no header; some hand-made and futures files do.
        first, _, rest = text.partition("\n")
        if "price" not in first.lower():
            raise MalformedLine(1, f"expected a trade or a header, got {_excerpt(first)}")
        self.lines += 1
        return rest

    def _check_order(self, ids: list[int], first_line: int) -> tuple[tuple[int, int], ...]:
        """Ids must increase; return the holes between consecutive ones."""
        prev = self.last_id
        start = ids[0] if prev is None else prev + 1
        if ids == list(range(start, start + len(ids))):
            return ()  # the normal case: consecutive from the previous line
        jumps = []
        for offset, tid in enumerate(ids):
            if prev is not None:
                if tid <= prev:
                    raise MalformedLine(
                        first_line + offset, f"trade id {tid} is not above the previous {prev}"
                    )
                if tid > prev + 1:
                    jumps.append((prev + 1, tid - 1))
            prev = tid
        return tuple(jumps)

    def _encode(self, rows: list[tuple[str, ...]]) -> bytes:
        seconds = self._seconds
        if len(seconds) > _SECOND_CACHE_LIMIT:
            seconds.clear()
        # A futures row leads with its market: the lead goes in front of the symbol, once.
        get, second, symbol = seconds.get, self._second, self._lead + self.symbol
        if self.kind is TradeKind.AGG_TRADES:
            return "".join(
                [
                    f"{symbol}\t{aid}\t{price}\t{qty}\t{first}\t{last}\t"
                    f"{get(sec) or second(sec)}.{ms}+00\t{maker}\n"
                    for aid, price, qty, first, last, sec, ms, maker in rows
                ]
            ).encode()
        return "".join(
            [
                f"{symbol}\t{tid}\t{price}\t{qty}\t{get(sec) or second(sec)}.{ms}+00\t{maker}\n"
                for tid, price, qty, sec, ms, maker in rows
            ]
        ).encode()

    def _second(self, sec: str) -> str:
        # A memo miss: once per distinct second. The date part is formatted once per day, the
        # rest by arithmetic (a third of a strftime).
        day, second = divmod(int(sec), SECONDS_PER_DAY)
        prefix = self._days.get(day)
        if prefix is None:
            moment = datetime.fromtimestamp(day * SECONDS_PER_DAY, UTC)
            prefix = self._days[day] = moment.strftime("%Y-%m-%d ")
        hours, rest = divmod(second, 3600)
        text = self._seconds[sec] = f"{prefix}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
        return text

    def _first_bad_line(self, text: str) -> MalformedLine | None:
        """The first line that is not a trade; None if the others are only blank lines."""
        for offset, line in enumerate(text.split("\n")[:-1]):
            if line.strip() and not self._line.fullmatch(line):
                reason = diagnose(line, self.market, self.kind)
                return MalformedLine(self.lines + offset + 1, reason)
        return None


def diagnose(line: str, market: Market = Market.SPOT, kind: TradeKind = TradeKind.TRADES) -> str:
    """Why ``line`` is not a trade (or aggregate trade) of `market`'s archive, in words."""
    fields = line.rstrip("\r").split(",")
    names: tuple[str, ...]
    checks: tuple[tuple[str, str], ...]
    if kind is TradeKind.AGG_TRADES:
        names, checks = _AGG_FIELDS, _AGG_CHECKS
        if market is not Market.SPOT:
            names, checks = names[:7], checks[:7]
    elif market is Market.SPOT:
        names, checks = _FIELDS, _CHECKS
    else:
        names, checks = _FUTURES_FIELDS, _CHECKS[:6]
    if len(fields) != len(names):
        return f"{len(fields)} fields instead of {len(names)}: {_excerpt(line)}"
    for name, value, (pattern, wanted) in zip(names, fields, checks, strict=True):
        if not re.fullmatch(pattern, value):
            return f"{name} {_excerpt(value)} is not {wanted}"
    return f"not a trade: {_excerpt(line)}"  # pragma: no cover


def _excerpt(text: str) -> str:
    return repr(text if len(text) <= _EXCERPT else text[:_EXCERPT] + "…")
