"""Schema migrations with Alembic, run from code so that a user only ever gives a database URL."""

from __future__ import annotations

import threading
from contextlib import nullcontext
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from herald.store.db import READ_ONLY, write_gate

_SCRIPTS = Path(__file__).with_name("migrations")
# Alembic's commands keep their running context in module globals (`alembic.context`, `alembic.op`): two threads
# migrating at once (the API's forecasts each open a fresh SQLite file) would remove each other's.
_ALEMBIC = threading.Lock()


def alembic_config(engine: Engine) -> Config:
    """An Alembic configuration pointing at Herald's migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def _at_head(engine: Engine) -> bool:
    """True when the database already has the newest schema (read without taking the write lock)."""
    heads = set(ScriptDirectory.from_config(alembic_config(engine)).get_heads())
    with engine.connect() as connection:
        connection = connection.execution_options(**{READ_ONLY: True})
        with connection.begin():
            current = set(MigrationContext.configure(connection).get_current_heads())
    return current == heads


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the database to `revision` (default: the newest schema).

    Every command opens the store this way, so the usual case (already up to date) only reads: a command started
    beside busy workers does not queue for the write lock just to find nothing to do.
    """
    if revision == "head" and _at_head(engine):
        return
    gate = write_gate(engine)
    with _ALEMBIC, gate or nullcontext(), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Several processes may start on a new database at once: one migrates, the others wait and find it done.
            connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision(engine: Engine, message: str) -> None:
    """Autogenerate a new migration from the difference between the database and `schema.py` (developers only)."""
    with _ALEMBIC, engine.begin() as connection:
        config = alembic_config(engine)
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True, rev_id=None)
