"""What the command line shows: one module per thing shown, each a set of pure formatting
functions plus, where output is live, one small class that owns it.

- `queries`: `latest`, `at`, `range` and `candles` as JSON, CSV, a Rich table or plain text;
- `gaps`: recorded gaps, the completeness check and the repair (its progress bars);
- `status`: coverage per symbol and for the database;
- `ingest`: the live monitor of `binprice ingest`, and `ingest_log` its log records;
- `imports`: the progress of `binprice import`;
- `export`, `watch`, `chart` (plotext, or a PNG with matplotlib) and `db`;
- `text`: plain aligned tables (a pipe's, and those that fit 80 columns as they are).

Command modules (`binprice.cli._*`) parse, make one `Store` call and hand the result here.
Nothing is imported by this package itself: Rich, plotext and matplotlib are imported inside
the functions that draw with them, so `binprice latest` in a pipe loads none of them.
"""
