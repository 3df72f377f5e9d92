"""The REST API over a real database (SQLite file and PostgreSQL), with two businesses and a key each.

Requests go through httpx (Starlette's TestClient is an httpx client speaking ASGI to the app in this process).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from herald.api.app import create_app
from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.queries import Store
from herald.store.tenancy import create_key, ensure_business

from ..conftest import migrated

BASE = "/api/v1.0"


@dataclass
class Tenant:
    """A business of the test, its public id and a key."""

    name: str
    business_id: int
    public_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"api-key {self.key}"}


@dataclass
class Api:
    """The application under test, its store and two businesses that must never see each other's data."""

    store: Store
    client: TestClient
    acme: Tenant
    globex: Tenant

    def tenant(self, name: str) -> Tenant:
        """Another business with a key."""
        return _tenant(self.store, name)


def _tenant(store: Store, name: str) -> Tenant:
    now = RealClock().now()
    with store.tx() as tx:
        business, _ = ensure_business(tx, name, now, IdFactory())
        _, key = create_key(tx, business.id, now)
    return Tenant(name, business.id, business.public_id, key)


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    """The app on SQLite and on PostgreSQL, with businesses `acme` and `globex` (no rate limit: see test_rate_limit)."""
    store = Store.open(migrated(database_url))
    with TestClient(create_app(store, rate_limit=None), raise_server_exceptions=False) as client:
        yield Api(store, client, _tenant(store, "acme"), _tenant(store, "globex"))
    store.close()
