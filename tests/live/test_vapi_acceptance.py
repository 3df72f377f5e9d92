"""A campaign on the `vapi` provider as a user runs it: `herald serve`, `herald worker`s and the fake Vapi as separate
processes on 127.0.0.1, on SQLite and on PostgreSQL.

The fake creates calls like Vapi's API and posts each call's server messages to the server URL Herald put in the
call's overrides (`{HERALD_PUBLIC_URL}/webhooks/vapi`, with the `X-Vapi-Secret` Herald asked for), after random
delays, 10% duplicated, 10% out of order, with messages of types Herald ignores mixed in. The checks compare what the
fake decided with what Herald stored and exported; forged, malformed and unknown messages change nothing.
"""

from __future__ import annotations

import csv
import io
import json
import random
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from herald.domain.statuses import CampaignStatus
from herald.providers.vapi import CALL_ID_KEY
from herald.store import schema as t
from herald.store.queries import Store

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

KEY = "acceptance-vapi-key-0123456789"
SECRET = "acceptance-server-secret-0123456789"
MACHINE_CAP = 5

CAMPAIGN = """
name: Vapi acceptance
channel: phone_call
timezone: America/Mexico_City
retries: 1
retry_delay_minutes: 0
failed_retry_limit: 1
concurrency_limit: {limit}
billing: {{machine_cap_seconds: {cap}}}
agent:
  name: Test
  tags: [interested]
  fields: [{{name: email, type: string, description: Where to write}}]
  conversion: {{tag: interested}}
provider: vapi
provider_options:
  api_key: "env:VAPI_KEY"
  assistant_id: asst-acceptance
  phone_number_id: pn-acceptance
  server_secret: "env:VAPI_SERVER_SECRET"
  api_base_url: "{api_url}"
  timeout_seconds: 5
"""


@pytest.fixture
def fake_vapi(tmp_path: Path) -> Iterator[str]:
    """The fake Vapi as a process (posting to each call's server URL); yields its URL."""
    options = ["--token", KEY, "--seed", "3", "--min-delay", "0.05", "--max-delay", "0.6"]
    with fake_server(tmp_path / "fake-vapi.log", "fake_vapi", *options) as url:
        yield url


def _count(store: Store, query: Any) -> int:
    with store.read() as tx:
        return int(tx.connection.execute(query).scalar_one())


def _pending(store: Store) -> int:
    return _count(store, select(func.count()).where(t.events.c.applied_at.is_(None)))


def _finished(store: Store) -> bool:
    return campaign_status(store) is CampaignStatus.FINISHED


def run_live(
    processes: Processes,
    store: Store,
    fake_vapi: str,
    tmp_path: Path,
    *,
    workers: int,
    contacts: int,
    limit: int,
    kills: int = 0,
) -> tuple[dict[str, str], str, list[subprocess.Popen[bytes]], subprocess.Popen[bytes]]:
    """Create and load the campaign, start serve and workers, activate, kill `kills` workers at random moments
    (each replaced), and wait until the campaign finished and every message was applied. Returns the environment,
    Herald's public URL, the workers and serve (still running)."""
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    env = {"VAPI_KEY": KEY, "VAPI_SERVER_SECRET": SECRET, "HERALD_PUBLIC_URL": public}
    lines = ["contact,name,context", *(f"+5255{index:08d},Person {index},ctx {index}" for index in range(contacts))]
    text = CAMPAIGN.format(limit=limit, cap=MACHINE_CAP, api_url=fake_vapi)
    load_campaign(processes, tmp_path, text, lines, **env)
    server, _ = serve(processes, port, **env)
    running = [processes.start("worker", "--poll", "0.2", **env) for _ in range(workers)]
    assert processes.run("campaign", "activate", "1", **env).returncode == 0
    rng = random.Random(7)
    kill_workers(
        processes,
        running,
        store,
        kills=kills,
        rng=rng,
        done=lambda: _count(store, select(func.count()).select_from(t.calls)),
        most=contacts // (kills + 1),
        what="calls to be placed",
        **env,
    )
    wait_for(lambda: _finished(store), "the campaign to finish", every=0.5)
    wait_for(
        lambda: fake_stats(fake_vapi)["pending_messages"] == 0 and _pending(store) == 0,
        "every server message posted and applied",
        every=0.2,
    )
    return env, public, running, server


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one database is enough here: CI time
def test_serve_and_workers_run_a_campaign_through_vapi(
    processes: Processes, store: Store, fake_vapi: str, tmp_path: Path, database_url: str
) -> None:
    contacts, limit = 400, 25
    workers = 3 if database_url.startswith("postgresql") else 2
    env, public, running, server = run_live(
        processes, store, fake_vapi, tmp_path, workers=workers, contacts=contacts, limit=limit
    )
    rejections(store, public, fake_vapi)
    assert stop(running) == [0] * workers, [log_of(worker) for worker in running]
    check(store, fake_vapi, contacts=contacts, limit=limit)
    exports(processes, env, store, public, contacts)
    assert stop([server]) == [0], log_of(server)
    assert "Traceback" not in "".join(log_of(process) for process in [*running, server])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # one database is enough here: CI time
def test_workers_killed_at_random_moments_place_no_call_twice(
    processes: Processes, store: Store, fake_vapi: str, tmp_path: Path
) -> None:
    """Vapi has no idempotency key: a start whose worker died is adopted from its first server message (which
    carries Herald's call id) long before its claim is taken back, so no call is lost or placed twice."""
    env, public, running, server = run_live(
        processes, store, fake_vapi, tmp_path, workers=2, contacts=300, limit=20, kills=6
    )
    assert stop(running) == [0, 0], [log_of(worker) for worker in running]
    assert stop([server]) == [0], log_of(server)
    check(store, fake_vapi, contacts=300, limit=20)
    exports(processes, env, store, public, 300)


def check(store: Store, fake_url: str, contacts: int, limit: int) -> None:
    """What the fake decided is what Herald recorded; no call twice; never over the limit."""
    stats = fake_stats(fake_url)
    with store.read() as tx:
        calls = list(tx.connection.execute(select(t.calls).order_by(t.calls.c.id)))
        rows = {row.id: row for row in tx.connection.execute(select(t.contacts))}
        inflight = tx.inflight_count(1)
    assert sum(1 for row in rows.values() if row.final) == contacts and inflight == 0
    placed = [row for row in calls if not row.provider_call_id.startswith("start-")]
    assert stats["placements"] == len(placed) == len({row.provider_call_id for row in placed})
    assert set(stats["outcomes"]) == {row.public_id for row in placed}
    assert stats["max_in_flight"] <= limit and stats["overlapping_numbers"] == []
    assert stats["messages_posted"] > stats["placements"] * 3  # duplicates and ignored types went through too
    for row in placed:
        sent = stats["outcomes"][row.public_id]
        assert (row.status, row.answered_by or "") == (sent["status"], sent["answered_by"]), row.public_id
        if sent["answered_by"] == "human":
            assert row.ended_by in ("user", "agent") and row.ended_reason in ("user_hangup", "agent_hangup")
            assert ("interested" in row.tags) is sent["converted"]
            assert bool(row.extracted.get("email")) is sent["converted"]
            if sent["converted"]:
                assert rows[row.contact_id].status == "converted"
        elif sent["answered_by"] == "machine":
            assert (row.ended_by, row.ended_reason) == ("agent", "voicemail")
        else:
            assert row.duration == 0 and row.ended_reason.startswith(("customer-", "twilio-"))


def rejections(store: Store, public: str, fake_url: str) -> None:
    """Forged, malformed and unknown messages: 4xx, nothing stored; ignored types: 200, nothing stored."""
    with store.read() as tx:
        known = tx.connection.execute(select(t.calls.c.public_id, t.calls.c.provider_call_id).limit(1)).one()
    call = {"id": known.provider_call_id, "assistantOverrides": {"metadata": {CALL_ID_KEY: known.public_id}}}
    message = {"type": "status-update", "status": "ringing", "timestamp": 1767625200000, "call": call}
    body = json.dumps({"message": message}).encode()
    unknown = json.dumps(
        {"message": {**message, "call": {"id": "x", "assistantOverrides": {"metadata": {CALL_ID_KEY: "cll_nobody"}}}}}
    ).encode()
    before = _count(store, select(func.count()).select_from(t.events))
    url = f"{public}/webhooks/vapi"
    cases: list[tuple[bytes, dict[str, str], int]] = [
        (body, {}, 401),
        (body, {"X-Vapi-Secret": "wrong"}, 401),
        (body, {"Authorization": "Bearer wrong"}, 401),
        (b"{not json", {"X-Vapi-Secret": SECRET}, 422),
        (json.dumps({"message": {"type": "status-update"}}).encode(), {"X-Vapi-Secret": SECRET}, 422),
        (unknown, {"X-Vapi-Secret": SECRET}, 422),
    ]
    with httpx.Client(timeout=10) as client:
        for content, headers, status in cases:
            answer = client.post(url, content=content, headers={"Content-Type": "application/json", **headers})
            assert answer.status_code == status, (content[:80], answer.text)
            assert SECRET not in answer.text and KEY not in answer.text
        ignored = client.post(url, json={"message": {"type": "transcript", "transcript": "hi"}})
        assert ignored.status_code == 200 and ignored.json() == {"accepted": 0, "duplicates": 0}
        assert _count(store, select(func.count()).select_from(t.events)) == before
        # A genuine but late and repeated message: accepted, and it changes nothing (a call never moves backwards).
        late = client.post(url, content=body, headers={"X-Vapi-Secret": SECRET})
        assert late.status_code == 200, late.text
    assert _count(store, select(func.count()).select_from(t.events)) <= before + 1


def exports(processes: Processes, env: dict[str, str], store: Store, public: str, count: int) -> None:
    """The call and contact exports hold the same invariants as a simulated campaign's."""
    calls_csv = processes.run("export", "1", "calls", "--layout", "2026-07", **env)
    contacts_csv = processes.run("export", "1", "contacts", **env)
    assert calls_csv.returncode == 0 and contacts_csv.returncode == 0, calls_csv.stderr + contacts_csv.stderr
    calls = list(csv.DictReader(io.StringIO(calls_csv.stdout)))
    contacts = list(csv.DictReader(io.StringIO(contacts_csv.stdout)))
    assert len(calls) == _count(store, select(func.count()).select_from(t.calls))
    assert list(calls[0])[:3] == ["campaign_name", "campaign_date", "id"] and "interested" in calls[0]

    def seconds(text: str) -> int:
        minutes, secs = text.split(":")
        return int(minutes) * 60 + int(secs)

    billed_by_contact: dict[str, int] = {}
    for row in calls:
        duration, billed = seconds(row["duration"]), seconds(row["billed_duration"])
        if row["answered_by"] == "human":
            # Herald's own recording URL (the base is the engine's; see the report on HERALD_PUBLIC_URL).
            assert billed == duration and row["recording_url"].endswith(f"/api/v1.0/call/{row['id']}/recording")
        elif row["answered_by"] == "machine":
            assert billed == min(duration, MACHINE_CAP) and row["recording_url"]
        else:
            assert row["answered_by"] == "" and duration == billed == 0 and row["recording_url"] == ""
            assert row["status"] in ("busy", "no-answer", "failed")
        assert (row["interested"] == "True") is bool(row["email"])
        billed_by_contact[row["number_to"]] = billed_by_contact.get(row["number_to"], 0) + billed
    assert len(contacts) == len({row["contact"] for row in contacts}) == count
    for row in contacts:
        assert row["status"] in ("answered", "converted", "voicemail", "failed")
        assert seconds(row["billed_duration"]) == billed_by_contact.get(row["contact"], 0)
        assert (row["status"] == "converted") is (row["interested"] == "True")
