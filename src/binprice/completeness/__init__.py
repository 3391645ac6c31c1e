"""Completeness: every trade id accounted for, stored or recorded as a gap.

The gap lifecycle of a running ingest (`gapkeeper`: detected → recorded → fetched → filled or
hole), fetching missing ids from REST (`backfill`, `gapset`), reconciliation with the exchange's
newest ids (`reconcile`), and `gaps --repair` (`repair`). The gap rows and every query about
them are SQL, so they live in `binprice.db` (`db.gaps`, `db.gaprows`). This package imports
nothing, so a query command that never checks completeness never loads its modules.
"""
