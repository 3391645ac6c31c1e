"""Archive layout and CSV decoding: pure, table-tested."""

from __future__ import annotations

from datetime import date

import pytest

from binprice.history._archive import (
    ArchiveFile,
    Period,
    checksum_text,
    daily,
    monthly,
    parse_checksum,
    parse_name,
    plan,
)
from binprice.history._csv import MAX_LINE_BYTES, CsvDecoder, MalformedLine, diagnose

SHA = "ab" * 32


# --- layout ----------------------------------------------------------------------------------


def test_file_names_and_paths_follow_the_archive_layout() -> None:
    """Monthly and daily names, paths and CHECKSUM paths are Binance's."""
    month, day = monthly("BTCUSDT", 2024, 1), daily("BTCUSDT", date(2024, 2, 3))
    assert month.name == "BTCUSDT-trades-2024-01.zip"
    assert month.path == "data/spot/monthly/trades/BTCUSDT/BTCUSDT-trades-2024-01.zip"
    assert day.path == "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2024-02-03.zip"
    assert day.checksum_path == day.path + ".CHECKSUM"
    assert (month.start, month.end) == (date(2024, 1, 1), date(2024, 2, 1))
    assert len(monthly("X", 2024, 2).days()) == 29  # a leap year
    assert parse_name(month.name) == month and parse_name(day.name) == day


@pytest.mark.parametrize(
    "name",
    [
        "BTCUSDT-aggTrades-2024-01.zip",
        "BTCUSDT-trades-2024-13.zip",
        "btcusdt-trades-2024-01.zip",
        "BTCUSDT-trades-2024-02-30.zip",
        "BTCUSDT-trades-2024-01.csv",
    ],
    ids=["aggtrades", "month-13", "lower-case", "feb-30", "csv"],
)
def test_parse_name_rejects_other_files(name: str) -> None:
    """Only spot trades zips are recognised."""
    assert parse_name(name) is None


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2024, 1, 1), date(2024, 3, 1), ["2024-01", "2024-02"]),
        (
            date(2024, 1, 30),
            date(2024, 3, 2),
            ["2024-01-30", "2024-01-31", "2024-02", "2024-03-01"],
        ),
        (date(2024, 1, 1), date(2024, 1, 31), [f"2024-01-{d:02d}" for d in range(1, 31)]),
        (date(2024, 12, 31), date(2025, 1, 1), ["2024-12-31"]),
    ],
    ids=["whole-months", "days-around-a-month", "month-minus-a-day", "one-day"],
)
def test_plan_uses_monthly_files_for_whole_months_and_daily_for_the_rest(
    start: date, end: date, expected: list[str]
) -> None:
    """The end is exclusive; a month is monthly only if all of it is inside the range."""
    names = [
        f.name.removeprefix("BTCUSDT-trades-").removesuffix(".zip")
        for f in plan("BTCUSDT", start, end)
    ]
    assert names == expected


def test_checksum_files_are_parsed_like_sha256sum_writes_them() -> None:
    """`<sha256>  <name>`, also a bare hash or `*name`; another file's checksum is refused."""
    name = "BTCUSDT-trades-2024-01.zip"
    assert parse_checksum(checksum_text(SHA, name), name) == SHA
    assert parse_checksum(SHA.upper() + "\n", name) == SHA
    assert parse_checksum(f"{SHA} *{name}", name) == SHA
    with pytest.raises(ValueError, match=r"not 'BTCUSDT-trades-2024-01\.zip'"):
        parse_checksum(f"{SHA}  ETHUSDT-trades-2024-01.zip", name)
    with pytest.raises(ValueError, match="does not start with a SHA-256"):
        parse_checksum("<Error><Code>NoSuchKey</Code></Error>", name)


# --- decoding --------------------------------------------------------------------------------


def _rows(data: bytes, **kw: object) -> list[list[str]]:
    decoder = CsvDecoder("BTCUSDT", **kw)  # type: ignore[arg-type]
    blocks = [decoder.feed(data), decoder.finish()]
    text = b"".join(b.payload for b in blocks).decode()
    return [line.split("\t") for line in text.splitlines()]


@pytest.mark.parametrize(
    ("line", "timestamp"),
    [
        (
            b"14764081,7599.00000000,0.22477000,1708.02723000,1518048000016,True,True",
            "2018-02-08 00:00:00.016+00",
        ),
        (
            b"51175358,17.80180000,5.69000000,101.29224200,1735689600010866,True,True",
            "2025-01-01 00:00:00.010+00",
        ),
        (
            b"1,1.00000000,1.00000000,1.00000000,1735689599999999,False,True",
            "2024-12-31 23:59:59.999+00",
        ),
    ],
    ids=["ms-2018", "us-2025", "us-floors-not-rounds"],
)
def test_time_unit_is_decided_by_magnitude_and_microseconds_are_floored(
    line: bytes, timestamp: str
) -> None:
    """13 digits are ms, 16 digits µs; µs land on floor(µs / 1000)."""
    [row] = _rows(line + b"\n")
    assert row[4] == timestamp


def test_rows_keep_price_and_quantity_text_verbatim_and_drop_quote_and_best_match() -> None:
    """symbol, id, price, qty, time, maker: the decimals as Binance wrote them."""
    line = b"6329162611,73109.30000000,0.00205000,149.87406500,1779941620983,False,True\n"
    assert _rows(line) == [
        [
            "BTCUSDT",
            "6329162611",
            "73109.30000000",
            "0.00205000",
            "2026-05-28 04:13:40.983+00",
            "False",
        ]
    ]


def test_crlf_lines_a_header_blank_lines_and_a_missing_final_newline_are_accepted() -> None:
    """What a hand-made file may look like still decodes."""
    data = (
        b"id,price,qty,quote_qty,time,is_buyer_maker,is_best_match\r\n"
        b"1,2.5,3,7.5,1518048000016,true,true\r\n\n"
        b"2,2.5,3,7.5,1518048000017,false,true"
    )
    rows = _rows(data)
    assert [r[1] for r in rows] == ["1", "2"]
    assert [r[5] for r in rows] == ["true", "false"]


def test_blocks_split_anywhere_decode_the_same() -> None:
    """Feeding a file in arbitrary pieces gives the same rows as feeding it whole."""
    lines = b"".join(
        b"%d,1.00000000,2.00000000,2.00000000,%d,True,True\n" % (i, 1735689600000000 + i * 1001)
        for i in range(100, 200)
    )
    whole = _rows(lines)
    decoder = CsvDecoder("BTCUSDT")
    pieces = [decoder.feed(lines[i : i + 37]) for i in range(0, len(lines), 37)]
    pieces.append(decoder.finish())
    assert b"".join(p.payload for p in pieces).decode().splitlines() == [
        "\t".join(r) for r in whole
    ]
    assert sum(p.rows for p in pieces) == 100
    assert next(p.first_id for p in pieces if p.rows) == 100
    assert max(p.last_id or 0 for p in pieces) == 199


def test_id_jumps_are_reported_as_holes_and_resumed_lines_are_skipped() -> None:
    """Ids 1,2,5,6,9 hold holes 3..4 and 7..8; skip_through=5 keeps 6 and 9 only."""
    lines = b"".join(b"%d,1.0,1.0,1.0,1518048000016,True,True\n" % i for i in (1, 2, 5, 6, 9))
    block = CsvDecoder("BTCUSDT").feed(lines)
    assert block.jumps == ((3, 4), (7, 8)) and (block.first_id, block.last_id) == (1, 9)
    resumed = CsvDecoder("BTCUSDT", skip_through=5).feed(lines)
    assert (resumed.rows, resumed.first_id, resumed.jumps) == (2, 6, ((7, 8),))


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"1,0.00000000,1.0,0,1518048000016,True,True", "price '0.00000000' is not a positive"),
        (b"1,1.0,-2.0,0,1518048000016,True,True", "qty '-2.0' is not a positive"),
        (b"1,1.0,2.0,2.0,15180480000160,True,True", "time '15180480000160' is not an epoch"),
        (b"1,1.0,2.0,2.0,1518048000016,yes,True", "isBuyerMaker 'yes' is not True or False"),
        (b"1,1.0,2.0,2.0,1518048000016,True", "6 fields instead of 7"),
        (b"x1,1.0,2.0,2.0,1518048000016,True,True", "id 'x1' is not a trade id"),
        (b"1,1e5,2.0,2.0,1518048000016,True,True", "price '1e5' is not a positive decimal"),
    ],
    ids=["zero-price", "negative-qty", "14-digit-time", "bad-bool", "short", "bad-id", "exponent"],
)
def test_malformed_lines_are_refused_with_their_line_number_and_reason(
    line: bytes, reason: str
) -> None:
    """The error names the line (1-based) and says what is wrong with it."""
    good = b"1,1.0,1.0,1.0,1518048000015,True,True\n"
    decoder = CsvDecoder("BTCUSDT")
    with pytest.raises(MalformedLine, match=reason) as info:
        decoder.feed(good.replace(b"1,", b"0,", 1) + line + b"\n")
    assert info.value.line_number == 2
    assert str(info.value).startswith("line 2: ")


def test_decreasing_or_repeated_ids_and_non_ascii_are_malformed() -> None:
    """Ids must grow; bytes must be text."""
    with pytest.raises(MalformedLine, match="line 2: trade id 5 is not above the previous 5"):
        CsvDecoder("X").feed(b"5,1,1,1,1518048000016,True,True\n5,1,1,1,1518048000016,True,True\n")
    with pytest.raises(MalformedLine, match="line 1: not ASCII"):
        CsvDecoder("X").feed("5,1,1,1,1518048000016,Trüe,True\n".encode())
    assert diagnose("") == "1 fields instead of 7: ''"


def test_archive_file_is_ordered_by_symbol_then_date() -> None:
    """Plans sort the way they are loaded."""
    files = [daily("B", date(2024, 1, 2)), monthly("A", 2024, 5), daily("A", date(2024, 1, 1))]
    assert sorted(files) == [files[2], files[1], files[0]]
    assert ArchiveFile("A", date(2024, 1, 1), Period.MONTHLY).daily_files()[-1] == daily(
        "A", date(2024, 1, 31)
    )


def test_a_line_with_no_end_is_refused_once_it_passes_the_cap() -> None:
    """A CSV that never ends its line is refused after `MAX_LINE_BYTES`, however it is fed:
    the partial line carried between chunks never grows past the cap."""
    good = b"1,1.0,1.0,1.0,1518048000015,True,True\n"
    for piece in (100, MAX_LINE_BYTES, 1 << 20):
        decoder = CsvDecoder("BTCUSDT")
        decoder.feed(good)
        with pytest.raises(MalformedLine, match="longer than 4,096 bytes with no end") as info:
            for _ in range(2 * MAX_LINE_BYTES // piece + 2):
                decoder.feed(b"2" * piece)
        assert info.value.line_number == 2


def test_a_line_just_under_the_cap_split_across_chunks_still_decodes() -> None:
    """A long but ended line (a header with padding) is carried, not refused."""
    header = b"id,price,qty,quote_qty,time,is_buyer_maker,is_best_match" + b" " * 4000 + b"\n"
    assert len(header) <= MAX_LINE_BYTES
    data = header + b"1,2.5,3,7.5,1518048000016,true,true\n"
    decoder = CsvDecoder("BTCUSDT")
    blocks = [decoder.feed(data[i : i + 1000]) for i in range(0, len(data), 1000)]
    assert sum(b.rows for b in blocks) == 1
    assert sum(b.size for b in blocks) == len(data)


def test_an_id_too_long_for_bigint_is_malformed_not_a_crash() -> None:
    """An id of thousands of digits (int() would refuse it with ValueError) is a bad line."""
    line = b"1" * 5000 + b",1.0,1.0,1.0,1518048000015,True,True\n"
    with pytest.raises(MalformedLine, match=r"line 1: id '1111.*' is not a trade id"):
        CsvDecoder("BTCUSDT").feed(line)


def test_blank_lines_in_bulk_are_skipped_and_counted_for_line_numbers() -> None:
    """Whole blocks of blank lines decode to nothing, and later lines keep their numbers."""
    decoder = CsvDecoder("BTCUSDT")
    assert decoder.feed(b"\n" * 10_000).rows == 0
    assert decoder.feed(b"1,1.0,1.0,1.0,1518048000015,True,True\n\r\n \n").rows == 1
    with pytest.raises(MalformedLine, match="line 10,014: 1 fields instead of 7"):
        decoder.feed(b"\n" * 10 + b"garbage\n")
    assert decoder.lines == 10_003
