"""binprice's version, in a module of its own: hatchling reads it at build time, and the modules
that show it (`--version`, the metrics) import it from here rather than from the package face,
which would import them back."""

__version__ = "0.1.0"
