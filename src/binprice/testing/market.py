"""A market shaped like Binance Spot's for breadth tests: ~1,400 real-looking symbol names and
heavy-tailed trade rates (a few pairs busy, most trading now and then).

Names are real base assets crossed with Binance's quote assets, ordered as the listing grows
(USDT pairs first), so `symbols(1300)` reads like the real `exchangeInfo`.
"""

from __future__ import annotations

import random

#: Base assets listed on Binance Spot (2026), most traded first.
_BASES = """
BTC ETH BNB SOL XRP DOGE ADA TRX AVAX LINK DOT TON SHIB LTC BCH NEAR UNI PEPE APT ICP ETC FET
RNDR HBAR STX FIL ATOM ARB IMX OP INJ SUI XLM VET MKR GRT TAO WIF THETA RUNE LDO FTM ALGO SEI
FLOKI TIA BONK GALA JUP AAVE FLOW QNT EGLD AXS SAND CHZ MANA XTZ NEO KAVA SNX CFX EOS IOTA ROSE
MINA WLD CRV GMX ZEC DYDX APE PENDLE BLUR ENS COMP ONE ZIL CAKE RPL WOO JASMY KSM 1INCH LUNC
TWT ANKR GLM IOTX ZRX SUSHI BAT ENJ CELO QTUM AR HOT RVN YFI GMT ASTR ORDI MASK ICX KDA SSV AUDIO
LPT SFP BAND SKL STORJ ACH ZEN JST SXP BICO ILV ONT DASH WAVES ALT PIXEL MANTA DYM PORTAL AEVO
ETHFI ENA W SAGA OMNI REZ BB NOT IO ZK LISTA ZRO BANANA RENDER TURBO POL EIGEN SCR COW CETUS PNUT
ACT NEIRO HMSTR CATI DOGS MOVE ME VANA USUAL PENGU BIO S TRUMP LAYER KAITO RED GPS SHELL ANIME
BERA TST PARTI NIL MUBARAK FORM INIT KERNEL WCT HYPER SIGN ONDO JTO STRK PYTH MEME XAI NFP AI
ACE VANRY HIFI ARKM CYBER ID EDU SUPER PHB RDNT HOOK MAGIC HIGH GAS LQTY AMB AGLD CTSI DENT DGB
FIDA FIO FLUX FORTH FRONT FXS GHST GTC HARD IDEX JOE KMD KNC LINA LIT LOKA LRC LSK MBOX MDT
MOVR MTL NKN NMR OAX OGN OM OXT PERP POLYX POND POWR PROM PUNDIX QI QKC QUICK RAD RARE REI RIF
RLC RONIN SANTOS SCRT SLP SNT SPELL STEEM STG STMX STPT SYN SYS T TFUEL TLM TRB TRU UMA UTK VIB
VOXEL WAN WAXP WIN XEC XNO XVG XVS YGG ALPHA ALICE ALPINE ARPA ASR ATM AUCTION BAKE BEL BETA
BNT BSW C98 CELR CHR CKB CLV COTI CREAM CVC CVX DAR DATA DCR DEGO DIA DODO DUSK ELF EPX ERN
"""
BASES = tuple(_BASES.split())

#: Quote assets, in the order a listing adds pairs in them.
QUOTES = ("USDT", "FDUSD", "USDC", "BTC", "TRY", "ETH", "BNB", "EUR", "BRL", "JPY")


def symbols(count: int) -> list[str]:
    """`count` distinct symbol names, USDT pairs of the busiest bases first (at most ~3,300)."""
    out: list[str] = []
    for quote in QUOTES:
        for base in BASES:
            if base != quote and len(out) < count:
                out.append(base + quote)
    if len(out) < count:
        raise ValueError(f"at most {len(out)} names")
    return out


def heavy_tailed_rates(
    names: list[str], total: float, *, exponent: float = 1.1, floor: float = 0.01
) -> dict[str, float]:
    """Trades/s per symbol summing to about `total`: Zipf-like by listing order (the first
    few busy, most rare), none below `floor`."""
    weights = [1.0 / (rank + 1) ** exponent for rank in range(len(names))]
    scale = total / sum(weights)
    return {name: max(floor, w * scale) for name, w in zip(names, weights, strict=True)}


def statuses(names: list[str], *, not_trading: float, seed: int = 0) -> dict[str, str]:
    """A share of `names` (never the first ten) in BREAK, HALT or END_OF_DAY, as a real
    listing always has some."""
    rng = random.Random(seed)
    out: dict[str, str] = {}
    for name in names[10:]:
        if rng.random() < not_trading:
            out[name] = rng.choice(("BREAK", "HALT", "END_OF_DAY"))
    return out
