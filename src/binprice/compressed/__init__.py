"""Closed months stored compressed inside PostgreSQL (issue #18; docs/storage-design.md).

`codec` turns one symbol's trades into blocks of column arrays and back, pure;
`binprice.db.blocks` writes and reads them (`trade_blocks`) and compresses a month.
"""
