"""Talking to Binance: the protocol (frames, payloads), REST, the WebSocket streams, and how a
refused or failed request is retried and paced.

The exchange package knows nothing of the database or of an ingest run's pipeline: `ingest`,
`history` and `completeness` use it. Import its modules directly; this package imports nothing,
so a query command that never talks to the exchange never loads aiohttp.
"""
