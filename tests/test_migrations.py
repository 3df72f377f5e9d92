"""The Alembic migrations produce exactly the schema in `herald.store.schema`."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from herald.store.db import connect
from herald.store.migrate import upgrade
from herald.store.schema import metadata


def test_migrations_match_the_schema(tmp_path: Path) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'm.db'}")
    upgrade(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), metadata) == []
    upgrade(engine)  # idempotent: a second run changes nothing
    engine.dispose()
