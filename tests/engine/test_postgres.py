"""The same seeded campaign on a real PostgreSQL server and on SQLite writes byte-identical exports.

SQLite runs the engine's hot statements on the DBAPI cursor; PostgreSQL runs every statement through SQLAlchemy Core.
Equal exports show the two paths keep the same rules. The server is HERALD_TEST_POSTGRES_URL (default: the local
`postgres` user on 127.0.0.1:5432); without a reachable server or the psycopg driver these tests are skipped, after a
connect timeout of a few seconds at most, never a hang.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import make_url

from herald.demo import simulate_campaign
from herald.domain.statuses import Channel
from herald.exports.campaign_files import write_all
from herald.store.queries import Store

SERVER_URL = os.environ.get("HERALD_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SEED = 11


@pytest.fixture(scope="module")
def server() -> Iterator[object]:
    """An autocommit admin connection to the server (to create and drop test databases), or a skip."""
    psycopg = pytest.importorskip("psycopg")
    url = make_url(SERVER_URL)
    try:
        admin = psycopg.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password or None,
            dbname=url.database or "postgres", connect_timeout=3, autocommit=True,
        )  # fmt: skip
    except psycopg.OperationalError as error:
        pytest.skip(f"no PostgreSQL server at {url.render_as_string(hide_password=True)}: {error}")
    yield admin
    admin.close()


@pytest.fixture
def postgres_url(server: object) -> Iterator[str]:
    """A fresh database on the server, dropped afterwards."""
    name = f"herald_test_{uuid.uuid4().hex[:12]}"
    server.execute(f'CREATE DATABASE "{name}"')  # type: ignore[attr-defined]
    try:
        yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')  # type: ignore[attr-defined]


def _exports(url: str, channel: Channel, folder: Path) -> dict[str, bytes]:
    store = Store.open(url)
    try:
        campaign_id, _, _, stats = simulate_campaign(store, channel, contacts=120, seed=SEED)
        assert stats.attempts >= 120
        return {kind.value: path.read_bytes() for kind, path in write_all(store, campaign_id, folder).items()}
    finally:
        store.close()


@pytest.mark.parametrize("channel", [Channel.PHONE_CALL, Channel.WHATSAPP])
def test_postgres_and_sqlite_write_the_same_exports(channel: Channel, postgres_url: str, tmp_path: Path) -> None:
    on_sqlite = _exports(f"sqlite:///{tmp_path / 'herald.db'}", channel, tmp_path / "sqlite")
    on_postgres = _exports(postgres_url, channel, tmp_path / "postgres")
    assert sorted(on_postgres) == sorted(on_sqlite)
    for kind, content in on_sqlite.items():
        assert content.count(b"\r\n") > 1, kind  # rows, not just a header
        assert on_postgres[kind] == content, f"{kind} export differs between PostgreSQL and SQLite"
