"""Alembic environment: runs migrations on the connection Herald hands over (see herald.store.migrate)."""

from __future__ import annotations

from alembic import context

from herald.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run Herald migrations through herald.store.migrate.upgrade()")
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
