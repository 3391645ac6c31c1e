"""The futures archives' layout and CSV dialects, read by the importer's pure layer (#19, item
3 of the issue): `data/futures/um|cm` paths, contract names with `_`, header rows, `true`/`false`,
six fields (USD-M's quote_qty, COIN-M's base_qty not stored), and COPY rows led by the market."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from binprice.history._archive import daily, parse_name, plan
from binprice.history._csv import CsvDecoder, MalformedLine
from binprice.markets import Market
from binprice.testing.archive_files import ArchiveMarket
from binprice.testing.archive_kinds import ArchivePath, file_lines

DAY = date(2025, 1, 1)


def test_futures_archive_paths_and_names() -> None:
    assert daily("BTCUSDT", DAY, Market.USDM).path == (
        "data/futures/um/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-01.zip"
    )
    coinm = parse_name("BTCUSD_PERP-trades-2025-01.zip", Market.COINM)
    assert coinm is not None
    assert coinm.path == "data/futures/cm/monthly/trades/BTCUSD_PERP/BTCUSD_PERP-trades-2025-01.zip"
    assert [f.path for f in plan("BTCUSDT", DAY, date(2025, 1, 2))] == [
        "data/spot/daily/trades/BTCUSDT/BTCUSDT-trades-2025-01-01.zip"
    ]
    assert {f.market for f in plan("BTCUSD_PERP", DAY, date(2025, 3, 2), Market.COINM)} == {
        Market.COINM
    }


@pytest.mark.parametrize(
    ("market", "symbol"), [(Market.USDM, "BTCUSDT"), (Market.COINM, "BTCUSD_PERP")]
)
def test_a_daily_futures_file_of_the_test_archive_decodes_to_its_trades(
    market: Market, symbol: str
) -> None:
    """The test archive's daily file (header row, true/false, ms): every trade, exact texts,
    each COPY row led by the market's number."""
    archive = ArchiveMarket.generate(
        [symbol], DAY, date(2025, 1, 2), trades_per_day=40, market=market
    )
    file = daily(symbol, DAY, market)
    lines = "".join(file_lines(archive, ArchivePath(market, "trades", file))).encode()
    assert lines[:1].isalpha()  # a header row
    decoder = CsvDecoder(symbol, market=market)
    block = decoder.feed(lines)
    rows = block.payload.decode().splitlines()
    trades = list(archive.trades(file))
    assert block.rows == len(trades) == len(rows) == 40
    for row, trade in zip(rows, trades, strict=True):
        lead, name, tid, price, qty, stamp, maker = row.split("\t")
        assert (lead, name, int(tid)) == (str(market.number), symbol, trade.trade_id)
        assert (Decimal(price), Decimal(qty)) == (trade.price, trade.quantity)
        moment = datetime.fromtimestamp(trade.time_ms / 1000, UTC)
        assert stamp == f"{moment:%Y-%m-%d %H:%M:%S}.{trade.time_ms % 1000:03d}+00"
        assert maker == ("true" if trade.is_buyer_maker else "false")


def test_a_spot_line_in_a_futures_file_is_refused_naming_the_fields() -> None:
    decoder = CsvDecoder("BTCUSDT", market=Market.USDM)
    with pytest.raises(MalformedLine, match="7 fields instead of 6"):
        decoder.feed(b"5,1.0,1.0,1.0,1735689600000,True,True\n")
