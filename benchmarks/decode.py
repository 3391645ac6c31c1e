"""Decode speed of the fast path: µs per combined @trade frame.

Run: ``python benchmarks/decode.py [N]``. Prints one line per frame kind.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from binprice.exchange.protocol import WireTrade, decode_frame

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "binance"
DEFAULT_FRAMES = 1_000_000


def _measure(label: str, frames: list[bytes], total: int) -> None:
    rounds = max(1, total // len(frames))
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(rounds):
            for frame in frames:
                decode_frame(frame)
        best = min(best, time.perf_counter() - start)
    per_frame_us = best / (rounds * len(frames)) * 1e6
    print(f"{label:<14} {per_frame_us:6.3f} µs/frame  ({rounds * len(frames):,} frames, best of 3)")


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_FRAMES
    combined = (FIXTURES / "trade_combined.jsonl").read_bytes().splitlines()
    raw = (FIXTURES / "trade_raw.jsonl").read_bytes().splitlines()
    assert all(isinstance(decode_frame(f), WireTrade) for f in combined + raw)
    _measure("combined", combined, total)
    _measure("raw (slow)", raw, total // 4)


if __name__ == "__main__":
    main()
