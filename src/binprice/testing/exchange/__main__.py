"""``python -m binprice.testing.exchange``: the test exchange's command line (`testing/cli.py`).

A package's ``__main__`` rather than a ``__name__`` test in the exchange module: the command
line imports the exchange, so the exchange must not import the command line back.
"""

from binprice.testing.cli import main

main()
