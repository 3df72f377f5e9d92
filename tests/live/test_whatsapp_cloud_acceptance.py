"""A WhatsApp campaign as a user runs it: `herald serve`, several `herald worker`s and a fake Cloud API as separate
processes on 127.0.0.1, on SQLite and on PostgreSQL, to `finished`.

The fake answers sends like Graph (5% refused with the throughput error 130429, which Herald retries), and posts
each message's story back as signed webhooks after random delays, 10% duplicated and 10% out of order, in both
shapes: statuses, failures with Meta's codes, quick-reply answers, and STOP typed without context. The checks compare
what the fake says happened with what Herald stored and with the sendout export (SPEC §7.5).
"""

from __future__ import annotations

import csv
import io
import json
import random
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from herald.domain.statuses import CampaignStatus
from herald.providers.whatsapp_cloud import sign
from herald.store import schema as t
from herald.store.queries import Store
from herald.testing.fake_whatsapp import PHONE_NUMBER_ID

from .processes import (
    Processes,
    campaign_status,
    fake_server,
    fake_stats,
    free_port,
    kill_workers,
    load_campaign,
    log_of,
    processes,
    serve,
    stop,
    store,
    wait_for,
)

__all__ = ["processes", "store"]

SECRET = "acceptance-app-secret-0123456789"
TOKEN = "EAAG-acceptance-token-0123456789"
HEADER = (
    "customer_external_id,business_id,campaign_name,sendout_id,cnt_session_id,sent_at,delivered_at,read_at,"
    "opt_out_at,error_code,error_msg,button_clicks,link_clicks,input_variables,output_variables"
)
STAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}")
#: A contact's status after its last message, by that message's story in the fake.
FINAL_STATUS = {
    "accepted": "converted",
    "rejected": "rejected",
    "failed": "failed",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
    "chatter": "read",
}
BUTTON = {"accepted": "Sí", "rejected": "No", "opt_out_button": "Detener promociones"}

CAMPAIGN = """
name: WhatsApp acceptance
channel: whatsapp
timezone: America/Mexico_City
retries: 1
retry_delay_minutes: 0
failed_retry_limit: 1
concurrency_limit: 40
message_limit: 2000
response_timeout_hours: 0.003
template: promo
template_alt: promo_alt
agent: {{name: Sofía, conversion: {{agent_flag: true}}}}
provider: whatsapp_cloud
provider_options:
  phone_number_id: "{phone_number_id}"
  access_token: "env:WA_TOKEN"
  app_secret: "env:WA_APP_SECRET"
  verify_token: "env:WA_VERIFY_TOKEN"
  api_base_url: "{api_url}"
  body_parameters: [name, amount]
"""


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The fake Cloud API as a process; yields its URL and the port Herald must listen on for its webhooks."""
    herald_port = free_port()
    options = [
        "--app-secret", SECRET, "--token", TOKEN, "--seed", "5", "--min-delay", "0.05", "--max-delay", "0.4",
        "--error-rate-429", "0.05", "--callback-url", f"http://127.0.0.1:{herald_port}/webhooks/whatsapp_cloud",
    ]  # fmt: skip
    with fake_server(tmp_path / "fake.log", "fake_whatsapp", *options) as url:
        yield url, herald_port


def pending(store: Store) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(select(func.count()).where(t.events.c.applied_at.is_(None))).scalar_one())


def sent(store: Store) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(select(func.count()).select_from(t.messages)).scalar_one())


# SQLite here; the killed-worker run below is on PostgreSQL (CI time: ~50 s a run).
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_whatsapp_campaign_through_serve_workers_and_the_fake_cloud_api(
    processes: Processes, store: Store, fake: tuple[str, int], tmp_path: Path, database_url: str
) -> None:
    run_live(processes, store, fake, tmp_path, database_url, contacts=150, kills=0)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # one database is enough here: CI time
def test_workers_killed_at_random_moments_send_no_message_twice(
    processes: Processes, store: Store, fake: tuple[str, int], tmp_path: Path, database_url: str
) -> None:
    run_live(processes, store, fake, tmp_path, database_url, contacts=100, kills=3)


def run_live(
    processes: Processes,
    store: Store,
    fake: tuple[str, int],
    tmp_path: Path,
    database_url: str,
    *,
    contacts: int,
    kills: int,
) -> None:
    api_url, port = fake
    env = {"WA_TOKEN": TOKEN, "WA_APP_SECRET": SECRET, "WA_VERIFY_TOKEN": "verify-acceptance"}
    lines = ["contact,name,context,amount", *(f"+5255{i:08d},Person {i},ctx {i},{i}00" for i in range(contacts))]
    text = CAMPAIGN.format(phone_number_id=PHONE_NUMBER_ID, api_url=api_url)
    load_campaign(processes, tmp_path, text, lines, **env)
    server, _ = serve(processes, port, **env)
    base = f"http://127.0.0.1:{port}/webhooks/whatsapp_cloud"

    # Meta's subscription handshake, before any message.
    params = {"hub.mode": "subscribe", "hub.verify_token": "verify-acceptance", "hub.challenge": "8642"}
    answer = httpx.get(base, params=params, timeout=10)
    assert (answer.status_code, answer.text) == (200, "8642")
    assert httpx.get(base, params={**params, "hub.verify_token": "nope"}, timeout=10).status_code == 403

    workers = [
        processes.start("worker", "--poll", "0.2", **env) for _ in range(3 if "postgresql" in database_url else 2)
    ]
    assert processes.run("campaign", "activate", "1", **env).returncode == 0
    rng = random.Random(11)
    most = max(6, contacts // (kills + 1))
    kill_workers(
        processes,
        workers,
        store,
        kills=kills,
        rng=rng,
        done=lambda: sent(store),
        most=most,
        what="messages to be sent",
        **env,
    )
    wait_for(lambda: campaign_status(store) is CampaignStatus.FINISHED, "the campaign to finish", every=0.5)
    # Late webhooks (a duplicate `read` after the end) must all be taken and applied before the checks.
    wait_for(lambda: fake_stats(api_url)["pending_events"] == 0 and pending(store) == 0, "every webhook applied")

    # Forged, malformed and unknown: 4xx, nothing stored.
    with store.read() as tx:
        before = tx.connection.execute(select(func.count()).select_from(t.events)).scalar_one()
    forged = b'{"object":"whatsapp_business_account","entry":[]}'
    unknown = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
                "metadata": {"phone_number_id": PHONE_NUMBER_ID, "display_phone_number": "1"},
                "statuses": [{"id": "wamid.X", "status": "read", "timestamp": "1", "biz_opaque_callback_data": "987654"}],
            }}]}],
        }
    ).encode()  # fmt: skip
    for body, signature, expected in (
        (forged, "sha256=" + "0" * 64, 200),  # nothing to record: acknowledged unverified, nothing stored
        (unknown, "sha256=" + "0" * 64, 403),
        (unknown, sign(SECRET, unknown), 422),
        (b"{", sign(SECRET, b"{"), 422),
    ):
        answer = httpx.post(base, content=body, headers={"X-Hub-Signature-256": signature}, timeout=10)
        assert answer.status_code == expected, answer.text
    with store.read() as tx:
        assert tx.connection.execute(select(func.count()).select_from(t.events)).scalar_one() == before

    assert stop(workers) == [0] * len(workers), [log_of(worker) for worker in workers]
    assert stop([server]) == [0], log_of(server)
    export = tmp_path / "sendout.csv"
    result = processes.run("export", "1", "sendout", "-o", str(export), **env)
    assert result.returncode == 0, result.stderr
    check(store, fake_stats(api_url), export.read_bytes(), contacts)


def _failed_after(applied_at: datetime | None, created_at: datetime) -> bool:
    """Whether a message's `failed` status was applied after a later message of its contact was made."""
    return applied_at is not None and applied_at > created_at


def check(store: Store, stats: dict[str, Any], exported: bytes, contacts: int) -> None:
    with store.read() as tx:
        messages = list(tx.connection.execute(select(t.messages).order_by(t.messages.c.id)))
        people = {row.id: row for row in tx.connection.execute(select(t.contacts))}
        inflight = tx.inflight_count(1)
        suppressed = tx.suppressed_numbers(tx.campaign(1).business_id)
        failures = select(t.events.c.external_id, t.events.c.applied_at).where(
            t.events.c.subject == "message", t.events.c.kind == "failed"
        )
        failed_applied = {row.external_id: row.applied_at for row in tx.connection.execute(failures)}
    assert inflight == 0 and all(person.final for person in people.values())
    outcomes: dict[str, dict[str, Any]] = dict(stats["outcomes"])
    # Every message sent once (Graph has no idempotency key: a send whose answer was lost is never repeated, it
    # fails as worker_lost), each one Herald's; a claim its killed worker never sent is a failure of its own.
    unsent = [m for m in messages if str(m.id) not in outcomes]
    assert stats["messages"] == len(outcomes) == len(messages) - len(unsent) and stats["injected_429"] > 0
    assert set(outcomes) <= {str(m.id) for m in messages}
    assert all(m.provider_message_id == outcomes[str(m.id)]["wamid"] for m in messages if str(m.id) in outcomes)
    for message in unsent:
        assert (message.provider_message_id, message.error_code) == (f"send-{message.id}", "worker_lost")
        outcomes[str(message.id)] = {"status": "failed", "statuses": [], "error_code": "worker_lost"}
        stats["templates"][str(message.id)] = message.template

    by_contact: dict[int, list[Any]] = {}
    for message in messages:
        by_contact.setdefault(message.contact_id, []).append(message)
    assert len(by_contact) == contacts and max(len(sent) for sent in by_contact.values()) <= 3
    for contact_id, sent in by_contact.items():
        person = people[contact_id]
        stories = [outcomes[str(m.id)]["status"] for m in sent]
        # The retry after no response carries template_alt; a resend after a failure does not. What counts is what
        # Herald knew when it made the retry: a `failed` status applied only after the response timeout had already
        # sent the retry (a slow webhook on a loaded machine) left that message "no response" at the time.
        for index, message in enumerate(sent):
            no_response_before = any(
                story != "failed" or _failed_after(failed_applied.get(earlier.provider_message_id), message.created_at)
                for earlier, story in zip(sent[:index], stories[:index], strict=True)
            )
            assert stats["templates"][str(message.id)] == ("promo_alt" if no_response_before else "promo")
        last = stories[-1]
        if last.startswith("opt_out"):
            assert person.opted_out and person.contact in suppressed, (person.contact, stories)
        else:
            assert person.status == FINAL_STATUS[last] and not person.opted_out, (
                person.contact,
                stories,
                person.status,
            )

    rows = list(csv.reader(io.StringIO(exported.decode("utf-8"), newline="")))
    assert exported.split(b"\r\n")[0].decode() == HEADER
    by_session = {m.session_id: m for m in messages}
    assert len(rows) - 1 == len(messages)
    for row in rows[1:]:
        record = dict(zip(HEADER.split(","), row, strict=True))
        message = by_session[record["cnt_session_id"]]
        story = outcomes[str(message.id)]
        assert record["customer_external_id"] == people[message.contact_id].contact
        for column in ("sent_at", "delivered_at", "read_at", "opt_out_at"):
            assert record[column] == "" or STAMP.fullmatch(record[column]), record
        assert bool(record["sent_at"]) == ("sent" in story["statuses"])
        assert bool(record["delivered_at"]) == ("delivered" in story["statuses"])
        assert bool(record["read_at"]) == ("read" in story["statuses"])
        assert bool(record["opt_out_at"]) == story["status"].startswith("opt_out")
        assert record["error_code"] == story.get("error_code", "")
        assert bool(record["error_msg"]) == (story["status"] == "failed")
        clicks = json.loads(record["button_clicks"]) if record["button_clicks"] else []
        assert [click["name"] for click in clicks] == ([BUTTON[story["status"]]] if story["status"] in BUTTON else [])
        assert json.loads(record["input_variables"])["name"] == people[message.contact_id].name
