"""Alembic's entry point for the prediction log's migrations.

Run through :meth:`imovsp.monitoring.store.Store.upgrade` (``imovsp db upgrade``), which hands
over an open connection; the schema is :data:`imovsp.monitoring.store.metadata`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from imovsp.monitoring.store import metadata

# Any number, the same in every process: the service's workers may start together, and on
# PostgreSQL the first to take this lock migrates while the others wait, then find the schema
# up to date. (SQLite has no such lock: a worker that loses the race retries its migration.)
LOCK = 7_466_870


def run() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run the migrations with `imovsp db upgrade`")
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"SELECT pg_advisory_xact_lock({LOCK})"))
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


run()
