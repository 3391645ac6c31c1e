"""The test exchange's ``exchangeInfo`` bodies, shaped like Binance's in full: Spot's
(``/api/v3``) and the futures markets' (``/fapi/v1``, ``/dapi/v1``).

Clients parse more of it than binprice does: ccxt builds its markets from the filters' min/max
values and the precisions, python-binance and binance-sdk-spot model every field. Values are
those of Binance's BTCUSDT (2026) except what the synthetic market defines (tick, step).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from binprice.markets import Market
from binprice.testing.generator import (
    UNITS_PER_ONE,
    TradeGenerator,
    contract_size,
    decimals_of,
    format_units,
)

#: The symbol statuses of enums.md (CANCEL_ONLY since 2026-07-07).
STATUSES = ("TRADING", "END_OF_DAY", "HALT", "BREAK", "CANCEL_ONLY")
#: Statuses ``symbolStatus=`` may filter on (rest-api.md).
FILTERABLE_STATUSES = ("TRADING", "HALT", "BREAK")
PERMISSIONS = ("SPOT", "MARGIN")
_QUOTES = ("USDT", "USDC", "FDUSD", "BTC", "ETH", "BNB", "EUR", "TRY")
ORDER_TYPES = (
    "LIMIT",
    "LIMIT_MAKER",
    "MARKET",
    "STOP_LOSS",
    "STOP_LOSS_LIMIT",
    "TAKE_PROFIT",
    "TAKE_PROFIT_LIMIT",
)
STP_MODES = ("NONE", "EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH", "DECREMENT")
#: Spot assets have 8 decimals everywhere.
PRECISION = 8
MAX_PRICE = 1_000_000 * UNITS_PER_ONE
MAX_QTY = 9_000 * UNITS_PER_ONE
MAX_MARKET_QTY = 100 * UNITS_PER_ONE
MIN_NOTIONAL = 5 * UNITS_PER_ONE
MAX_NOTIONAL = 9_000_000 * UNITS_PER_ONE


def rate_limits(weight_limit: int) -> list[dict[str, Any]]:
    """Binance's limiters; only REQUEST_WEIGHT is enforced here (RAW_REQUESTS: 2026-04-02)."""
    return [
        _limit("REQUEST_WEIGHT", "MINUTE", 1, weight_limit),
        _limit("ORDERS", "SECOND", 10, 100),
        _limit("ORDERS", "DAY", 1, 200_000),
        _limit("RAW_REQUESTS", "MINUTE", 5, 300_000),
    ]


def _limit(kind: str, interval: str, number: int, limit: int) -> dict[str, Any]:
    return {"rateLimitType": kind, "interval": interval, "intervalNum": number, "limit": limit}


def base_and_quote(symbol: str) -> tuple[str, str]:
    quote = next((q for q in _QUOTES if symbol.endswith(q) and symbol != q), symbol[-4:])
    return symbol[: -len(quote)], quote


def symbol_entry(
    generator: TradeGenerator, status: str, *, permission_sets: bool = True
) -> dict[str, Any]:
    """One ``symbols`` entry; ``permission_sets=False`` is ``showPermissionSets=false``."""
    base, quote = base_and_quote(generator.symbol)
    tick, step = generator.spec.tick, generator.spec.step
    return {
        "symbol": generator.symbol,
        "status": status,
        "baseAsset": base,
        "baseAssetPrecision": PRECISION,
        "quoteAsset": quote,
        "quotePrecision": PRECISION,
        "quoteAssetPrecision": PRECISION,
        "baseCommissionPrecision": PRECISION,
        "quoteCommissionPrecision": PRECISION,
        "orderTypes": list(ORDER_TYPES),
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "opoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "amendAllowed": True,
        "pegInstructionsAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": True,
        "filters": [
            _filter("PRICE_FILTER", minPrice=tick, maxPrice=MAX_PRICE, tickSize=tick),
            _filter("LOT_SIZE", minQty=step, maxQty=MAX_QTY, stepSize=step),
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            _filter("MARKET_LOT_SIZE", minQty=0, maxQty=MAX_MARKET_QTY, stepSize=0),
            {
                "filterType": "TRAILING_DELTA",
                "minTrailingAboveDelta": 10,
                "maxTrailingAboveDelta": 2000,
                "minTrailingBelowDelta": 10,
                "maxTrailingBelowDelta": 2000,
            },
            {
                "filterType": "PERCENT_PRICE_BY_SIDE",
                "bidMultiplierUp": "5",
                "bidMultiplierDown": "0.2",
                "askMultiplierUp": "5",
                "askMultiplierDown": "0.2",
                "avgPriceMins": 5,
            },
            {
                "filterType": "NOTIONAL",
                "minNotional": format_units(MIN_NOTIONAL),
                "applyMinToMarket": True,
                "maxNotional": format_units(MAX_NOTIONAL),
                "applyMaxToMarket": False,
                "avgPriceMins": 5,
            },
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ORDER_LISTS", "maxNumOrderLists": 20},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            {"filterType": "MAX_NUM_ORDER_AMENDS", "maxNumOrderAmends": 10},
        ],
        "permissions": [],
        "permissionSets": [list(PERMISSIONS)] if permission_sets else [],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": list(STP_MODES),
    }


def _filter(kind: str, **units: int) -> dict[str, Any]:
    """A filter whose values are decimal strings, given in 1e-8 units."""
    return {"filterType": kind, **{name: format_units(value) for name, value in units.items()}}


# --- the futures markets (docs/futures.md §5) -----------------------------------------------

#: USD-M's contract statuses (COIN-M has the same under ``contractStatus``).
FUTURES_STATUSES = (
    "PENDING_TRADING",
    "TRADING",
    "PRE_DELIVERING",
    "DELIVERING",
    "DELIVERED",
    "PRE_SETTLE",
    "SETTLING",
    "CLOSE",
    "TRADING_HALT",
    "TRADING_CANCEL_ONLY",
)
#: A perpetual's deliveryDate in Binance's answers: 2100-12-25 08:00 UTC.
PERPETUAL_DELIVERY_MS = 4133404800000
#: Contracts listed before the test market begins (2019-09-25, USD-M's first day).
ONBOARD_MS = 1569398400000
DELIVERY_HOUR_MS = 8 * 3_600_000
FUTURES_ORDER_TYPES = (
    "LIMIT",
    "MARKET",
    "STOP",
    "STOP_MARKET",
    "TAKE_PROFIT",
    "TAKE_PROFIT_MARKET",
    "TRAILING_STOP_MARKET",
)


def futures_rate_limits(weight_limit: int) -> list[dict[str, Any]]:
    return [
        _limit("REQUEST_WEIGHT", "MINUTE", 1, weight_limit),
        _limit("ORDERS", "MINUTE", 1, 1200),
        _limit("ORDERS", "SECOND", 10, 300),
    ]


def contract_of(symbol: str) -> tuple[str, str, int]:
    """(pair, contractType, deliveryDate ms) a contract's name implies: ``BTCUSDT`` and
    ``BTCUSD_PERP`` are perpetuals, ``BTCUSDT_250328`` delivers on 2025-03-28 at 08:00 UTC."""
    pair, _, suffix = symbol.partition("_")
    if not suffix or suffix == "PERP":
        return pair, "PERPETUAL", PERPETUAL_DELIVERY_MS
    try:
        day = datetime.strptime(suffix, "%y%m%d").replace(tzinfo=UTC)
    except ValueError:
        return pair, "PERPETUAL", PERPETUAL_DELIVERY_MS
    return pair, "CURRENT_QUARTER", int(day.timestamp() * 1000) + DELIVERY_HOUR_MS


def futures_symbol_entry(generator: TradeGenerator, status: str) -> dict[str, Any]:
    """One ``symbols`` entry of ``/fapi/v1/exchangeInfo`` or ``/dapi/v1/exchangeInfo``."""
    market = generator.market
    pair, contract_type, delivery = contract_of(generator.symbol)
    tick, step = generator.spec.tick, generator.spec.step
    if market is Market.COINM:
        base, quote, margin = pair.removesuffix("USD"), "USD", pair.removesuffix("USD")
    else:
        base, quote = base_and_quote(pair)
        margin = quote
    entry: dict[str, Any] = {
        "symbol": generator.symbol,
        "pair": pair,
        "contractType": contract_type,
        "deliveryDate": delivery,
        "onboardDate": ONBOARD_MS,
    }
    # COIN-M calls the status contractStatus and adds the contract's size.
    if market is Market.COINM:
        entry.update(contractStatus=status, contractSize=contract_size(generator.symbol))
    else:
        entry["status"] = status
    entry.update(
        {
            "maintMarginPercent": "2.5000",
            "requiredMarginPercent": "5.0000",
            "baseAsset": base,
            "quoteAsset": quote,
            "marginAsset": margin,
            "pricePrecision": decimals_of(tick),
            "quantityPrecision": decimals_of(step),
            "baseAssetPrecision": PRECISION,
            "quotePrecision": PRECISION,
            "underlyingType": "COIN",
            "underlyingSubType": [],
            "triggerProtect": "0.0500",
            "filters": [
                {
                    "filterType": "PRICE_FILTER",
                    "minPrice": generator.price_text(tick),
                    "maxPrice": generator.price_text(MAX_PRICE),
                    "tickSize": generator.price_text(tick),
                },
                {
                    "filterType": "LOT_SIZE",
                    "minQty": generator.qty_text(step),
                    "maxQty": generator.qty_text(MAX_QTY),
                    "stepSize": generator.qty_text(step),
                },
            ],
            "orderTypes": list(FUTURES_ORDER_TYPES),
            "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
        }
    )
    return entry
