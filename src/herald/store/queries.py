"""The database behind Herald: `Store` opens it and hands out transactions; `Tx` holds every query the engine, CLI,
exports and API run inside one, so none of them writes SQL.

`Tx` gathers the queries of each aggregate from its own module, each statement beside the method that runs it:
`campaigns` (campaigns, businesses, the campaign log), `contacts` (contacts, suppressions, leases), `calls`,
`messages`, `events`, `exports` (streamed reads); `base` has what they share and `direct` the SQLite fast path.
Batches use executemany; idempotency (events, suppressions) is enforced by unique constraints, not by checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

from sqlalchemy import Engine

from herald.store.base import NOTIFY_CHANNEL, Conflict, NotFound
from herald.store.calls import CallQueries
from herald.store.campaigns import CampaignQueries, campaign_config
from herald.store.contacts import ContactChange, ContactQueries, NewContact, state_values
from herald.store.db import READ_ONLY, connect, write_gate
from herald.store.events import EventQueries
from herald.store.exports import ExportQueries
from herald.store.messages import MessageQueries
from herald.store.migrate import upgrade

__all__ = [
    "NOTIFY_CHANNEL",
    "Conflict",
    "ContactChange",
    "NewContact",
    "NotFound",
    "Store",
    "Tx",
    "campaign_config",
    "state_values",
]


class Tx(CampaignQueries, ContactQueries, CallQueries, MessageQueries, EventQueries, ExportQueries):
    """Queries inside one transaction."""


class Store:
    """The database behind Herald: a URL is all it needs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._gate = write_gate(engine)

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True, pool_size: int | None = None) -> Store:
        """Connect (and by default bring the schema up to date)."""
        store = cls(connect(url, pool_size=pool_size))
        if migrate:
            upgrade(store.engine)
        return store

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        What it reads stays true until it commits: on SQLite it holds the database's write lock from its start (keep
        it short, and never call a provider inside it); on PostgreSQL the rows it will change are locked by the
        queries that read them (`lock_campaign`, `claim_*`, `FOR UPDATE`).
        """
        with self._gate or nullcontext(), self.engine.begin() as connection:
            yield Tx(connection)

    def write_gate(self) -> AbstractContextManager[None]:
        """Held around every write transaction (see `tx`): the SQLite file's write gate, or nothing."""
        return self._gate or nullcontext()

    @contextmanager
    def autocommit(self) -> Iterator[Tx]:
        """Statements that each commit on their own, for work whose every write is one statement (a webhook's
        events): on PostgreSQL no transaction is begun, which saves the BEGIN and COMMIT round trips; on SQLite it
        is one write transaction (`tx`), whose write lock makes that as cheap."""
        if self.engine.dialect.name != "postgresql":
            with self.tx() as tx:
                yield tx
            return
        with self.engine.connect() as connection:
            yield Tx(connection.execution_options(isolation_level="AUTOCOMMIT"))

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction over one consistent snapshot, which never blocks writers (exports, reports)."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                yield Tx(connection)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()
