"""The same seeded campaign on a real PostgreSQL server and on SQLite writes byte-identical exports.

SQLite runs the engine's hot statements on the DBAPI cursor; PostgreSQL runs every statement through SQLAlchemy Core.
Equal exports show the two paths keep the same rules. The server is HERALD_TEST_POSTGRES_URL (default: the local
`postgres` user on 127.0.0.1:5432); without a reachable server or the psycopg driver these tests are skipped, after a
connect timeout of a few seconds at most, never a hang.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from herald.demo import simulate_campaign
from herald.domain.statuses import Channel
from herald.exports.campaign_files import write_all
from herald.store.queries import Store

SEED = 11


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
