"""The web console over a real database (SQLite file and PostgreSQL): two businesses, a user each, and signed-in HTTP clients.

Requests go through Starlette's TestClient (httpx speaking ASGI to the app in this process); the browser tests in
`test_browser.py` drive a real `herald serve` instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from herald.api.app import create_app
from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.queries import NewContact, Store
from herald.store.tenancy import agents, ensure_business
from herald.store.users import create_user

from ..conftest import migrated

# The browser harness's fixtures, declared here once for every browser test module: a session fixture imported into
# two test modules would be two fixtures, i.e. two Playwright instances at once, which Playwright's sync API refuses.
from .browser import browser, chromium, live_console, page, page_without_js

__all__ = ["browser", "chromium", "live_console", "page", "page_without_js"]

PASSWORD = "correct horse battery"
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form of a page."""
    found = _CSRF.search(html)
    assert found is not None, "no csrf_token field on the page"
    return found.group(1)


@dataclass
class Member:
    """A business of the test and the e-mail of its user."""

    name: str
    business_id: int
    email: str


@dataclass
class Console:
    """The application under test, its store, and two businesses that must never see each other's data."""

    store: Store
    app: Any
    acme: Member
    globex: Member

    def client(self) -> TestClient:
        """A browser with no cookies yet (redirects not followed, so tests see them)."""
        return TestClient(self.app, raise_server_exceptions=True, follow_redirects=False)

    def sign_in(self, member: Member, password: str = PASSWORD) -> TestClient:
        """A browser signed in as the member's user."""
        client = self.client()
        response = self.post_login(client, member.email, password)
        assert response.status_code == 303, response.text
        return client

    @staticmethod
    def post_login(client: TestClient, email: str, password: str) -> Any:
        """Fill in and send the sign-in form."""
        token = csrf_of(client.get("/login").text)
        return client.post("/login", data={"csrf_token": token, "email": email, "password": password, "next": "/"})

    def campaign(
        self, member: Member, name: str, channel: str = "phone_call", contacts: int = 0, **settings: Any
    ) -> int:
        """A campaign of the member's business on its ready agent, created as the REST API does."""
        with self.store.read() as tx:
            agent = agents(tx, member.business_id)[0]
        integration = next(i for i in agent.integrations if i.integration_type == channel)
        campaign_id = engine.create_from_agent(
            self.store,
            member.business_id,
            agent.public_id,
            integration.public_id,
            channel,
            {"name": name, **settings},
            RealClock().now(),
        )
        if contacts:
            rows = [NewContact(contact=f"+5255{i:08d}", name=f"P{i}", context="") for i in range(contacts)]
            engine.add_contacts(self.store, campaign_id, rows, RealClock().now())
        return campaign_id


def _member(store: Store, name: str) -> Member:
    now = RealClock().now()
    email = f"ops@{name}.test"
    with store.tx() as tx:
        business, _ = ensure_business(tx, name, now, IdFactory())
        create_user(tx, business.id, email, PASSWORD, now)
    return Member(name, business.id, email)


@pytest.fixture
def console(database_url: str) -> Iterator[Console]:
    """The app on a fresh SQLite file and on PostgreSQL, with businesses `acme` and `globex`, one user each."""
    store = Store.open(migrated(database_url))
    app = create_app(store, rate_limit=None)
    yield Console(store, app, _member(store, "acme"), _member(store, "globex"))
    store.close()
