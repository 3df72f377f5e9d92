"""Tracked links and second-scale timers with real processes: `herald serve` and two `herald worker`s on one
database send a WhatsApp campaign (live simulator, `response_timeout_hours: 0.001`), while clicks on the tracked
URLs arrive concurrently at the redirect. Every click is counted once in the sendout export, and the campaign ends
by its 3.6-second response timeout. On SQLite and on PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import func, select

from herald.domain.statuses import CampaignStatus
from herald.store import schema as t
from herald.store.queries import Store

from .processes import Processes, log_of, processes, serve, stop, wait_for

__all__ = ["processes"]

OFFER = "https://shop.example.com/oferta"
CONTACTS = 24
CAMPAIGN = """
name: Links live
channel: whatsapp
template: promo
retries: 0
response_timeout_hours: 0.001
links:
  - {id: offer, name: Ver oferta, url: "https://shop.example.com/oferta"}
provider: simulator
provider_options:
  time_scale: 0.02
  whatsapp: {send_error_rate: 0, failure_rate: 0, delivered_receipt_rate: 1, read_rate: 0, link_click_rate: 0}
"""


def _sent_tokens(store: Store) -> dict[str, int]:
    """Token → message id, for the messages whose provider answer is recorded (a recipient can click them)."""
    with store.read() as tx:
        rows = tx.connection.execute(
            select(t.tracked_links.c.token, t.tracked_links.c.message_id)
            .join(t.messages, t.messages.c.id == t.tracked_links.c.message_id)
            .where(t.messages.c.provider_message_id.is_not(None))
        )
        return {row[0]: row[1] for row in rows}


def _pending(store: Store) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(select(func.count()).where(t.events.c.applied_at.is_(None))).scalar_one())


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # one database is enough here: CI time
def test_clicks_from_many_clients_are_each_counted_once(processes: Processes, tmp_path: Path) -> None:
    store = Store.open(processes.database_url)
    try:
        (tmp_path / "campaign.yaml").write_text(CAMPAIGN)
        lines = ["contact,name,context", *(f"+5255{index:08d},Person {index},ctx" for index in range(CONTACTS))]
        (tmp_path / "contacts.csv").write_text("\n".join(lines) + "\n")
        for args in (
            ("campaign", "create", str(tmp_path / "campaign.yaml")),
            ("contacts", "import", "1", str(tmp_path / "contacts.csv")),
        ):
            result = processes.run(*args)
            assert result.returncode == 0, result.stderr
        server, base = serve(processes)
        env = {"HERALD_PUBLIC_URL": base}
        workers = [processes.start("worker", "--poll", "0.2", **env) for _ in range(2)]
        assert processes.run("campaign", "activate", "1", **env).returncode == 0
        tokens = wait_for(lambda: (found := _sent_tokens(store)) and len(found) == CONTACTS and found, "every send")
        # 1, 2 or 3 clicks per message, all at once from 8 clients.
        wanted = {token: 1 + index % 3 for index, token in enumerate(sorted(tokens))}
        with httpx.Client(base_url=base, follow_redirects=False, timeout=30) as client:

            def click(token: str) -> tuple[int, str]:
                response = client.get(f"/l/{token}")
                return response.status_code, response.headers.get("location", "")

            with ThreadPoolExecutor(8) as pool:
                answers = list(pool.map(click, [token for token, n in wanted.items() for _ in range(n)]))
            assert set(answers) == {(302, OFFER)}
            assert client.get("/l/" + "A" * 32).status_code == 404
        wait_for(
            lambda: _status(store) is CampaignStatus.FINISHED and _pending(store) == 0,
            "the campaign to finish with every click applied",
        )
        assert stop(workers) == [0, 0], [log_of(worker) for worker in workers]
        assert stop([server]) == [0], log_of(server)
        exported = processes.run("export", "1", "sendout")
        assert exported.returncode == 0, exported.stderr
        with store.read() as tx:
            messages = tx.connection.execute(select(t.messages.c.id, t.messages.c.session_id))
            session_of = {row[0]: row[1] for row in messages}
    finally:
        store.close()
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert len(rows) == CONTACTS
    expected = Counter({session_of[tokens[token]]: n for token, n in wanted.items()})
    counted = Counter({row["cnt_session_id"]: len(json.loads(row["link_clicks"])) for row in rows})
    assert counted == expected
    assert {(c["id"], c["name"]) for row in rows for c in json.loads(row["link_clicks"])} == {("offer", "Ver oferta")}
    assert all(urlsplit(OFFER).hostname not in row["input_variables"] for row in rows)


def _status(store: Store) -> CampaignStatus:
    with store.read() as tx:
        return tx.campaign(1).status
