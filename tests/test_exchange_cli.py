"""`binprice exchange` and `binprice archive`: the test servers from an installed binprice."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import pytest


async def test_binprice_exchange_serves_trades_and_rest() -> None:
    """`binprice exchange --port 0 --rate 50` announces its URLs, answers REST and streams."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "binprice",
        "exchange",
        "--port",
        "0",
        "--rate",
        "50",
        "--symbols",
        "BTCUSDT",
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        urls = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        async with aiohttp.ClientSession() as session:
            async with session.get(urls["rest_url"] + "/api/v3/ping") as resp:
                assert resp.status == 200
            stream = urls["ws_url"] + "/stream?streams=btcusdt@trade"
            async with session.ws_connect(stream) as ws:
                frame = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        assert frame["stream"] == "btcusdt@trade" and frame["data"]["s"] == "BTCUSDT"
    finally:
        proc.terminate()
        await proc.wait()


async def test_binprice_exchange_help_lists_its_options() -> None:
    """Its --help is a binprice command's, every option explained, a moderate default rate."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "binprice", "exchange", "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    text = " ".join(out.decode().split())  # the help wraps at the terminal's width
    assert "binprice exchange [OPTIONS]" in text and "usage:" not in text
    assert "--market" in text and "--port" in text and "[default: 10]" in text


async def test_binprice_exchange_imitates_a_futures_market() -> None:
    """`--market usdm`: /fapi/v1 REST with USD-M's weight limit, futures frames (X, no M)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "binprice", "exchange", "--market", "usdm", "--port", "0",
        "--rate", "50", "--symbols", "BTCUSDT", stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    try:
        urls = json.loads(await asyncio.wait_for(proc.stdout.readline(), 30))
        assert urls["market"] == "usdm"
        async with aiohttp.ClientSession() as session:
            async with session.get(urls["rest_url"] + "/fapi/v1/exchangeInfo") as resp:
                info = await resp.json()
            async with session.get(urls["rest_url"] + "/api/v3/ping") as resp:
                assert resp.status == 404  # a USD-M exchange has no Spot API
            stream = urls["ws_url"] + "/stream?streams=btcusdt@trade"
            async with session.ws_connect(stream) as ws:
                frame = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
        assert info["rateLimits"][0]["limit"] == 2400
        assert info["symbols"][0]["contractType"] == "PERPETUAL"
        assert frame["data"]["X"] == "MARKET" and "M" not in frame["data"]
    finally:
        proc.terminate()
        await proc.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["exchange", "--market", "futures"], "unknown --market 'futures'; choose one of"),
        (["exchange", "--rate", "fast"], "--rate takes trades/s per symbol or 'max'"),
        (["archive", "--end", "2024-01-01"], "--end (2024-01-01) must be after --start"),
        (["archive", "--start", "1.1.2024"], "--start takes a day as YYYY-MM-DD"),
    ],
    ids=["market", "rate", "window", "day"],
)
def test_bad_options_are_one_line_that_says_what_to_do(args: list[str], message: str) -> None:
    """A typo is a usage error (exit 2) in one `error:` line, before anything listens."""
    result = subprocess.run(
        [sys.executable, "-m", "binprice", *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
