"""`binprice exchange`: the test exchange from an installed binprice, as the README shows it."""

from __future__ import annotations

import asyncio
import json
import sys

import aiohttp


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
    """Its --help is the exchange's own, under the command's name."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "binprice", "exchange", "--help", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0
    assert b"usage: binprice exchange" in out and b"--port" in out and b"--rate" in out
