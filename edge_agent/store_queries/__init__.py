"""Every query of the store database, one module per group of tables.

edge_agent/store_db.py opens the database and owns its schema (migrations);
these modules own what is read and written, each with a named function per
query. sqlite-utils (`StoreDatabase.db`) is used where it reads more clearly;
hot paths (bulk ingest, footfall upserts) keep prepared SQL because it is
faster there. Functions that take a connection run inside the caller's
transaction (`write_transaction`), so one batch or one scoring run stays whole.

- `sales`: customers and transactions (POS ingest, hourly sales, retention)
- `events`: customer events and identity links
- `alerts`: the outbox, the alerts and the scoring runs
- `footfall`: footfall buckets, dwell, camera gaps and camera status
- `runs`: ingest runs and the quarantine

The one reader outside: models/store_data.py loads a whole store into arrays
for scoring, training and the central side's backtests, which must not import
edge_agent (tests/test_boundaries.py).
"""
