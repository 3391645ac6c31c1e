"""binprice: capture every Binance trade into PostgreSQL and ask questions of it."""

__version__ = "0.1.0"

__all__ = ["__version__"]
