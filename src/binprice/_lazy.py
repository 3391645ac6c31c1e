"""Names a package exports but imports on first use (PEP 562's module `__getattr__`).

`binprice` and `binprice.ingest` map each public name to the module that defines it, so importing
the package costs nothing until a name is used (the command line imports `binprice` before every
command).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_names(package: str, where: Mapping[str, str]) -> Callable[[str], Any]:
    """The `__getattr__` of `package`: imports `where[name]` and returns its `name`, kept in the
    package from then on, so the next look-up is a plain attribute."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
