"""The futures markets' protocol, pure: frames, REST rows, exchangeInfo, endpoints."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from binprice.errors import ConfigError, ExchangeError
from binprice.exchange.endpoints import endpoints, market_api
from binprice.exchange.protocol import (
    Malformed,
    NonMarketTrade,
    OtherEvent,
    WireAggTrade,
    WireTrade,
    decode_agg_frame,
    decode_frame,
    decode_futures_frame,
    decode_rest_agg_trades,
    decode_rest_trades,
    frame_decoder,
    parse_exchange_info,
    parse_weight_limit,
)
from binprice.markets import Market, parse_market

FUTURES = Path(__file__).parent / "fixtures" / "binance" / "futures"
SPOT = Path(__file__).parent / "fixtures" / "binance"


def lines(name: str) -> list[str]:
    return (FUTURES / name).read_text().splitlines()


def test_a_futures_market_trade_decodes_with_its_short_decimals() -> None:
    """The observed raw USD-M frame (T before s, X, no M) is a trade with exact decimals."""
    assert decode_futures_frame(lines("usdm_trade.jsonl")[0]) == WireTrade(
        "BTCUSDT", 3493102749, Decimal("27785.00"), Decimal("0.014"), 1679851564486, True
    )
    combined = decode_futures_frame(lines("usdm_trade.jsonl")[1])
    assert combined == WireTrade(
        "BCHUSDT", 538575870, Decimal("241.59"), Decimal("0.056"), 1690522820458, True
    )


@pytest.mark.parametrize(
    ("line", "kind"), [(2, "INSURANCE_FUND"), (3, "ADL"), (4, "NA")], ids=["fund", "adl", "na"]
)
def test_a_non_market_futures_trade_is_not_a_trade_but_keeps_its_id(line: int, kind: str) -> None:
    """Insurance fund, ADL and NA trades are never in REST or the archives: not stored, id kept."""
    event = decode_futures_frame(lines("usdm_trade.jsonl")[line])
    assert event == NonMarketTrade("BTCUSDT", 3493102749 + line - 1, kind, event.time_ms)  # type: ignore[union-attr]


def test_spot_and_futures_decoders_refuse_each_others_frames() -> None:
    """Pointed at the wrong market, each decoder classifies instead of storing a look-alike."""
    futures_frame = lines("usdm_trade.jsonl")[1]
    spot_frame = (SPOT / "trade_combined.jsonl").read_text().splitlines()[0]
    assert decode_frame(futures_frame) == OtherEvent("futures_trade", "bchusdt@trade")
    assert decode_futures_frame(spot_frame) == OtherEvent("spot_trade", "btcusdt@trade")
    assert frame_decoder(Market.SPOT) is decode_frame
    assert frame_decoder(Market.COINM) is decode_futures_frame


def test_aggregate_frames_of_every_market_decode() -> None:
    """USD-M's documented @aggTrade (no M) and Spot's (with M) give the same WireAggTrade."""
    payload = (FUTURES / "usdm_agg_trade.json").read_text().strip()
    expected = WireAggTrade(
        "BTCUSDT", 5933014, Decimal("0.001"), Decimal(100), 100, 105, 123456785, True
    )
    assert decode_agg_frame(payload) == expected
    wrapped = json.dumps({"stream": "btcusdt@aggTrade", "data": json.loads(payload)})
    assert decode_agg_frame(wrapped) == expected
    spot = json.loads(payload) | {"M": True}
    assert decode_agg_frame(json.dumps(spot)) == expected
    wrong = json.dumps({"stream": "ethusdt@aggTrade", "data": json.loads(payload)})
    assert isinstance(decode_agg_frame(wrong), Malformed)
    trade = decode_agg_frame(lines("usdm_trade.jsonl")[0])
    assert isinstance(trade, OtherEvent)  # a trade frame on an aggregate stream is not stored


def test_rest_trades_of_both_futures_markets_decode() -> None:
    """USD-M rows carry quoteQty and isRPITrade, COIN-M rows baseQty; qty is what is stored."""
    usdm = decode_rest_trades("BTCUSDT", (FUTURES / "usdm_rest_trades.json").read_bytes())
    assert usdm == [
        WireTrade("BTCUSDT", 28457, Decimal("4.000001"), Decimal(12), 1499865549590, True)
    ]
    coinm = decode_rest_trades("BTCUSD_PERP", (FUTURES / "coinm_rest_trades.json").read_bytes())
    assert coinm[0].quantity == Decimal(1)  # contracts, not base_qty
    assert coinm[0].price == Decimal("9642.2")


def test_rest_aggregates_skip_audit_rows() -> None:
    """The 2022 audit rows (f = l = -1) are left out; the documented rows decode exactly."""
    body = (FUTURES / "usdm_rest_agg_trades.json").read_bytes()
    assert decode_rest_agg_trades("btcusdt", body) == [
        WireAggTrade(
            "BTCUSDT",
            26129,
            Decimal("0.01633102"),
            Decimal("4.70443515"),
            27781,
            27781,
            1498793709153,
            True,
        )
    ]
    coinm = decode_rest_agg_trades(
        "BTCUSD_PERP", (FUTURES / "coinm_rest_agg_trades.json").read_bytes()
    )
    assert [(a.agg_id, a.quantity, a.is_buyer_maker) for a in coinm] == [(416690, 3, False)]
    with pytest.raises(ExchangeError, match="code -1121"):
        decode_rest_agg_trades("X", b'{"code":-1121,"msg":"Invalid symbol."}')


def test_usdm_exchange_info_has_perpetuals_quarterlies_and_delistings() -> None:
    """contractType, delivery and listing dates; a SETTLING contract is not trading."""
    body = (FUTURES / "usdm_exchange_info.json").read_bytes()
    infos = parse_exchange_info(body)
    assert infos["BTCUSDT"].is_perpetual and infos["BTCUSDT"].is_trading
    quarterly = infos["BTCUSDT_250328"]
    assert (quarterly.contract_type, quarterly.delivery_ms) == ("CURRENT_QUARTER", 1743148800000)
    assert quarterly.tick_size == Decimal("0.1")
    assert not infos["OLDUSDT"].is_trading
    assert parse_weight_limit(body) == 2400


def test_coinm_exchange_info_reads_contract_status() -> None:
    """COIN-M names the status contractStatus; both entries parse."""
    infos = parse_exchange_info((FUTURES / "coinm_exchange_info.json").read_bytes())
    assert {s: i.status for s, i in infos.items()} == {
        "BTCUSD_200925": "TRADING",
        "BTCUSD_PERP": "TRADING",
    }
    assert infos["BTCUSD_200925"].onboard_ms == 1590739200000
    assert infos["BTCUSD_PERP"].step_size == Decimal(1)


def test_each_market_has_its_endpoints_paths_and_weights() -> None:
    """Presets per market; Binance.US and the data-only hosts have no futures."""
    assert endpoints("binance", None, None, Market.USDM) == (
        "wss://fstream.binance.com",
        "https://fapi.binance.com",
    )
    assert endpoints("binance", None, "https://dapi.binance.com/dapi/", Market.COINM) == (
        "wss://dstream.binance.com",
        "https://dapi.binance.com",
    )
    with pytest.raises(ConfigError, match="USD-M futures; choose one of binance, testnet"):
        endpoints("binance-us", None, None, Market.USDM)
    local = endpoints("binance", "ws://127.0.0.1:9/stream", "http://127.0.0.1:9", Market.USDM)
    assert local == ("ws://127.0.0.1:9", "http://127.0.0.1:9")
    usdm, spot = market_api(Market.USDM), market_api(Market.SPOT)
    assert usdm.path("historicalTrades") == "/fapi/v1/historicalTrades"
    assert market_api(Market.COINM).path("aggTrades") == "/dapi/v1/aggTrades"
    assert (usdm.weight_limit, usdm.historical_page_limit, usdm.historical_needs_key) == (
        2400,
        500,
        True,
    )
    assert (spot.weight_limit, spot.historical_page_limit, spot.historical_needs_key) == (
        6000,
        1000,
        False,
    )


@pytest.mark.parametrize("text", ["usdm", " USDM ", Market.USDM], ids=["plain", "spaced", "enum"])
def test_market_names_parse(text: str) -> None:
    """--market takes the lowercase names, loosely typed."""
    assert parse_market(text) is Market.USDM


def test_an_unknown_market_says_the_choices() -> None:
    """A typo lists spot, usdm, coinm."""
    with pytest.raises(ConfigError, match="choose one of spot, usdm, coinm"):
        parse_market("futures")
