"""The Alembic migrations produce exactly the schema in `herald.store.schema`."""

from __future__ import annotations

import threading
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


def test_threads_migrate_their_own_databases_at_once(tmp_path: Path) -> None:
    # The API serves forecasts on threads, each migrating a fresh SQLite file: Alembic keeps its running context in
    # module globals, so unguarded threads removed each other's ("KeyError: 'config'", a 500 to the caller).
    threads, rounds = 3, 2
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def migrate(worker: int) -> None:
        start.wait()
        for round_ in range(rounds):
            engine = connect(f"sqlite:///{tmp_path / f'm-{worker}-{round_}.db'}")
            try:
                upgrade(engine)
            except BaseException as error:
                failures.append(error)
            finally:
                engine.dispose()

    workers = [threading.Thread(target=migrate, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    for worker in range(threads):
        for round_ in range(rounds):
            engine = connect(f"sqlite:///{tmp_path / f'm-{worker}-{round_}.db'}")
            with engine.connect() as connection:
                assert compare_metadata(MigrationContext.configure(connection), metadata) == []
            engine.dispose()
