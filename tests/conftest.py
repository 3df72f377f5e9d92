"""Shared fixtures: real SQLite files, a virtual clock, and a campaign factory."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import make_url

from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.simulator import Simulator
from herald.store.queries import NewContact, Store

# The suite runs on a shared, busy 2-core machine: timing says nothing about correctness there, so no property test
# may fail for being slow (no deadline, no too_slow health check). Every other health check stays on.
settings.register_profile("herald", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("herald")

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # Monday 09:00 in Mexico City

AGENT: dict[str, Any] = {
    "tags": ["promise", "callback"],
    "fields": [{"name": "email"}, {"name": "amount", "type": "number"}, {"name": "date", "type": "date"}],
    "conversion": {"tag": "promise"},
}


_TEMPLATE: list[Path] = []


def migrated_sqlite(path: Path) -> str:
    """Make `path` a fresh SQLite database with the migrated schema; returns its URL.

    The schema is migrated once per test session (Store.open, as `herald init` does) and copied for each test: a
    migration run costs 0.1-0.3 s and hundreds of tests start from an empty database, a copy ~10 ms. Each test still
    gets a file of its own.
    """
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="herald-schema-"))
        atexit.register(shutil.rmtree, folder, True)
        Store.open(f"sqlite:///{folder / 'herald.db'}").close()
        # Closed cleanly, the database is one file; a leftover write-ahead log would hold part of the schema.
        assert sorted(p.name for p in folder.iterdir()) == ["herald.db", "herald.db-writer.lock"]
        _TEMPLATE.append(folder / "herald.db")
    shutil.copyfile(_TEMPLATE[0], path)
    return f"sqlite:///{path}"


def migrated(url: str) -> str:
    """`url` with the migrated schema in place: a SQLite file not made yet becomes a copy of the session's migrated
    one (`database_url`'s PostgreSQL databases come migrated already)."""
    prefix = "sqlite:///"
    if url.startswith(prefix) and not Path(url.removeprefix(prefix)).exists():
        return migrated_sqlite(Path(url.removeprefix(prefix)))
    return url


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh SQLite file with the migrated schema."""
    opened = Store.open(migrated_sqlite(tmp_path / "herald.db"))
    yield opened
    opened.close()


def phone_numbers(count: int, start: int = 0) -> list[str]:
    """Distinct valid-looking Mexico City mobile numbers."""
    return [f"+5255{start + index:08d}" for index in range(count)]


CampaignFactory = Callable[..., tuple[int, Engine]]


@pytest.fixture
def campaign(store: Store) -> CampaignFactory:
    """Create, load and activate a campaign; returns its id and an engine on a virtual clock."""

    def make(
        contacts: int = 20,
        seed: int = 1,
        activate: bool = True,
        numbers: list[str] | None = None,
        **config: Any,
    ) -> tuple[int, Engine]:
        clock = VirtualClock(START)
        ids = IdFactory(seed)
        data: dict[str, Any] = {"name": "Test campaign", "channel": "phone_call", "agent": AGENT, **config}
        campaign_id = create_campaign(store, parse_campaign(data), clock.now(), ids)
        rows = [
            NewContact(contact=n, name=f"Person {i}", context="ctx")
            for i, n in enumerate(numbers or phone_numbers(contacts))
        ]
        add_contacts(store, campaign_id, rows, clock.now())
        if activate:
            act(store, campaign_id, "activate", clock.now())
        return campaign_id, Engine(store, Simulator(seed), clock, ids)

    return make


# --- PostgreSQL: the server at HERALD_TEST_POSTGRES_URL (default: the local `postgres` user on 127.0.0.1:5432) ---------

SERVER_URL = os.environ.get("HERALD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
_SKIPPED_POSTGRES: list[str] = []


@pytest.fixture(scope="session")
def server() -> Iterator[object]:
    """An autocommit admin connection to the server (to create and drop test databases), or a skip after a connect
    timeout of a few seconds at most, never a hang."""
    psycopg = pytest.importorskip("psycopg")
    url = make_url(SERVER_URL)
    try:
        admin = psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password or None,
            dbname=url.database or "postgres", connect_timeout=3, autocommit=True,
        )  # fmt: skip
    except psycopg.OperationalError as error:
        reason = f"no PostgreSQL server at {url.render_as_string(hide_password=True)}: {error}"
        _SKIPPED_POSTGRES.append(reason)
        pytest.skip(reason)
    yield admin
    admin.close()


@contextmanager
def _database(server: object, prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database on the server (empty, or a copy of `template`), dropped on exit; yields its URL."""
    name = f"{prefix}{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    server.execute(f'CREATE DATABASE "{name}"{copy}')  # type: ignore[attr-defined]
    try:
        yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]


@pytest.fixture
def postgres_url(server: object) -> Iterator[str]:
    """A fresh database on the server, dropped afterwards."""
    with _database(server, "herald_test_") as url:
        yield url


@pytest.fixture(scope="session")
def postgres_template(server: object) -> Iterator[str]:
    """A PostgreSQL database migrated once per test session, the template of `migrated_postgres_url`."""
    with _database(server, "herald_test_template_") as url:
        Store.open(url).close()
        name = make_url(url).database
        assert name
        yield name


@pytest.fixture
def migrated_postgres_url(server: object, postgres_template: str) -> Iterator[str]:
    """A fresh database with the migrated schema, dropped afterwards: a copy of the session's template (~0.3 s)
    rather than a migration run (~0.7 s more per database; about 230 tests ask for one)."""
    with _database(server, "herald_test_", postgres_template) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on a SQLite file and on a fresh PostgreSQL database (skipped, loudly, without a server).

    The SQLite file does not exist yet. The PostgreSQL database already has the migrated schema, unless the test is
    marked `empty_database` (a test of what Herald does before `herald init`, or of the migrations themselves).
    """
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'herald.db'}"
    wanted = "postgres_url" if request.node.get_closest_marker("empty_database") else "migrated_postgres_url"
    url: str = request.getfixturevalue(wanted)
    return url


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say loudly when the PostgreSQL half of the suite did not run."""
    if _SKIPPED_POSTGRES:
        terminalreporter.write_sep("!", "PostgreSQL tests SKIPPED", red=True, bold=True)
        terminalreporter.write_line(_SKIPPED_POSTGRES[0])
        terminalreporter.write_line("Set HERALD_TEST_POSTGRES_URL or start a server on 127.0.0.1:5432 to run them.")
