"""What `binprice exchange` and `binprice archive` print: one JSON line with the server's URLs
on stdout (scripts and `ExchangeProcess` read it), and where a TLS certificate is on stderr."""

from __future__ import annotations

import sys

import msgspec


def announce(urls: dict[str, str]) -> None:
    """The server listens: its URLs as one JSON line, flushed at once."""
    cert = urls.get("cert")
    if cert:
        print(f"TLS certificate (trust it in clients): {cert}", file=sys.stderr)
    sys.stdout.write(msgspec.json.encode(urls).decode() + "\n")
    sys.stdout.flush()
