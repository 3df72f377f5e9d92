"""`/readyz`, `/metrics` and the access log, over a real SQLite file and a real PostgreSQL database.

The exposition is read back with prometheus_client's own parser, and every database figure is checked against a
count the test makes itself with plain SQL.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy import func, insert, select, update

from herald.api.app import create_app
from herald.domain.campaign import parse_campaign
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.base import ProviderEvent
from herald.providers.simulator import Simulator
from herald.store import claims, inbox
from herald.store import schema as t
from herald.store.db import connect
from herald.store.migrate import upgrade
from herald.store.queries import NewContact, Store

from .conftest import BASE, Api

START = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)


def scrape(client: TestClient, **headers: str) -> list[Sample]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {found}"
    return found[0]


def values(samples: list[Sample], name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for s in samples if s.name == name}


def running_campaign(store: Store, contacts: int) -> int:
    """A phone campaign on the simulator with `contacts` contacts, activated and stepped once (calls placed)."""
    clock = VirtualClock(START)
    config = parse_campaign({"name": "Ops", "channel": "phone_call", "concurrency_limit": 3})
    campaign_id = create_campaign(store, config, clock.now(), IdFactory(3))
    numbers = [f"+5255{index:08d}" for index in range(contacts)]
    add_contacts(store, campaign_id, [NewContact(contact=n, name="P", context="") for n in numbers], clock.now())
    act(store, campaign_id, "activate", clock.now())
    Engine(store, Simulator(3), clock, IdFactory(3)).step(clock.now())
    return campaign_id


def test_readyz_is_ready_on_a_current_schema(api: Api) -> None:
    response = api.client.get("/readyz")
    assert response.status_code == 200 and response.json() == {"status": "ready"}
    assert api.client.get("/healthz").status_code == 200


@pytest.mark.empty_database  # upgraded to 0002 only
def test_readyz_names_a_schema_behind_and_recovers_once_migrated(database_url: str) -> None:
    engine = connect(database_url)
    upgrade(engine, "0002")
    store = Store(engine)
    try:
        with TestClient(create_app(store)) as client:
            response = client.get("/readyz")
            assert response.status_code == 503
            body = response.json()
            assert body["check"] == "migrations" and "herald init" in body["problem"] and "0002" in body["problem"]
            # The tables of 0003 are missing: the scrape still answers, saying the database figures are not there.
            assert value(scrape(client), "herald_database_up") == 0
            upgrade(engine)
            assert client.get("/readyz").status_code == 200
            assert value(scrape(client), "herald_database_up") == 1
    finally:
        store.close()


def test_readyz_and_metrics_answer_when_the_database_cannot_be_opened(tmp_path: Path) -> None:
    store = Store(connect(f"sqlite:///{tmp_path / 'no-such-folder' / 'herald.db'}"))
    with TestClient(create_app(store)) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and response.json()["check"] == "database"
        assert value(scrape(client), "herald_database_up") == 0


def test_database_figures_match_the_database(api: Api) -> None:
    store = api.store
    campaign_id = running_campaign(store, contacts=8)
    now = datetime.now(UTC)
    with store.tx() as tx:
        worker_id = claims.register(tx, "worker", now)
        stale = claims.register(tx, "worker", now - timedelta(minutes=5))
        inbox.add(
            tx,
            [
                ProviderEvent("http", "ext-1", "ended", START, attempt_id="nope-1"),
                ProviderEvent("http", "ext-2", "ended", START, attempt_id="nope-2"),
            ],
            now - timedelta(seconds=30),
        )
        endpoint = tx.connection.execute(
            insert(t.webhook_endpoints)
            .values(public_id="e1", business_id=api.acme.business_id, url="http://x", secret="s", created_at=now)
            .returning(t.webhook_endpoints.c.id)
        ).scalar_one()
        for index, (status, attempts) in enumerate([("pending", 0), ("pending", 2), ("delivered", 1), ("failed", 5)]):
            tx.connection.execute(
                insert(t.webhook_deliveries).values(
                    event_id=f"ev{index}", endpoint_id=endpoint, event_type="on_call_end", body="{}",
                    status=status, attempts=attempts, created_at=now - timedelta(minutes=index + 1),
                )
            )  # fmt: skip
    assert worker_id and stale
    samples = scrape(api.client)
    campaign = str(campaign_id)

    with store.read() as tx:
        run = tx.connection.execute
        by_status = dict(
            run(
                select(t.calls.c.status, func.count())
                .where(t.calls.c.campaign_id == campaign_id)
                .group_by(t.calls.c.status)
            ).all()
        )
        in_flight = run(select(func.count()).where(t.contacts.c.inflight_id.is_not(None))).scalar_one()
        due = run(
            select(func.count()).where(
                t.contacts.c.due_at <= datetime.now(UTC), t.contacts.c.inflight_id.is_(None), t.contacts.c.due_at.is_not(None)
            )
        ).scalar_one()  # fmt: skip
        events = run(select(func.count()).select_from(t.events)).scalar_one()
    assert by_status and sum(by_status.values()) == 3  # the concurrency limit
    calls = values(samples, "herald_calls")
    assert {
        dict(labels)["status"]: n for labels, n in calls.items() if dict(labels)["campaign"] == campaign
    } == by_status
    assert value(samples, "herald_in_flight_contacts", campaign=campaign) == in_flight == 3
    assert value(samples, "herald_queue_due_contacts", campaign=campaign) == due == 5
    assert value(samples, "herald_campaigns", status="active") == 1
    assert value(samples, "herald_inbox_pending_events", provider="http") == 2
    assert value(samples, "herald_events_stored_total") >= events >= 2
    assert value(samples, "herald_inbox_oldest_pending_seconds") >= 30
    assert value(samples, "herald_webhook_deliveries_pending") == 2
    assert value(samples, "herald_webhook_deliveries_failing") == 1
    assert value(samples, "herald_webhook_deliveries_created_total") == 4
    assert value(samples, "herald_webhook_deliveries_oldest_pending_seconds") >= 120
    assert value(samples, "herald_workers_alive", kind="worker") == 1

    # A finished campaign leaves the per-campaign series; its calls are in its exports.
    with store.tx() as tx:
        tx.connection.execute(update(t.campaigns).where(t.campaigns.c.id == campaign_id).values(status="finished"))
    after = scrape(api.client)
    assert not [s for s in after if s.labels.get("campaign") == campaign]
    assert value(after, "herald_campaigns", status="finished") == 1


def test_two_serve_processes_report_the_same_database_figures(api: Api, database_url: str) -> None:
    running_campaign(api.store, contacts=4)
    other = Store.open(database_url, migrate=False)
    try:
        with TestClient(create_app(other)) as second:
            first_samples, second_samples = scrape(api.client), scrape(second)
    finally:
        other.close()

    def database(samples: list[Sample]) -> set[tuple[str, tuple[tuple[str, str], ...], float]]:
        return {
            (s.name, tuple(sorted(s.labels.items())), s.value)
            for s in samples
            if not s.name.startswith("herald_http_") and "oldest" not in s.name
        }

    assert database(first_samples) == database(second_samples)


def test_latency_histogram_by_route_template_and_status_class(api: Api) -> None:
    for _ in range(3):
        assert api.client.get(f"{BASE}/agents", headers=api.acme.headers).status_code == 200
    assert api.client.get(f"{BASE}/agents").status_code == 401
    assert api.client.post("/webhooks/nobody", content=b"{}").status_code == 404
    assert api.client.get("/no/such/path/42").status_code == 404
    samples = scrape(api.client)
    count = "herald_http_request_duration_seconds_count"
    assert value(samples, count, route=f"{BASE}/agents", status_class="2xx", method="GET") == 3
    assert value(samples, count, route=f"{BASE}/agents", status_class="4xx", method="GET") == 1
    assert value(samples, count, route="/webhooks/{provider}", status_class="4xx", method="POST") == 1
    assert value(samples, count, route="(unmatched)", status_class="4xx") == 1
    assert not [s for s in samples if "/no/such" in s.labels.get("route", "")]
    buckets = [s for s in samples if s.name.endswith("_bucket") and s.labels["route"] == f"{BASE}/agents"]
    assert buckets and all(s.labels["pid"].isdigit() for s in buckets)


def test_metrics_token(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_METRICS_TOKEN", "s3cret-token")
    assert api.client.get("/metrics").status_code == 401
    assert api.client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert api.client.get("/metrics", headers=api.acme.headers).status_code == 401  # an API key is not the token
    assert value(scrape(api.client, Authorization="Bearer s3cret-token"), "herald_database_up") == 1
    assert api.client.get("/readyz").status_code == 200  # readiness never needs it


@pytest.fixture
def access(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="herald.access"):
        yield caplog


def test_access_log_names_route_status_duration_and_business_never_the_key(
    api: Api, access: pytest.LogCaptureFixture
) -> None:
    api.client.get(f"{BASE}/agents", headers=api.acme.headers)
    api.client.get(f"{BASE}/agents", headers={"Authorization": "api-key hk_not_a_real_key_at_all_000000"})
    records = [r for r in access.records if r.name == "herald.access"]
    assert len(records) == 2
    ok, refused = records
    assert (ok.method, ok.path, ok.status, ok.business) == ("GET", f"{BASE}/agents", 200, api.acme.public_id)  # type: ignore[attr-defined]
    assert ok.duration_ms >= 0  # type: ignore[attr-defined]
    assert refused.status == 401 and not hasattr(refused, "business")  # type: ignore[attr-defined]
    assert api.acme.key not in access.text and "hk_not_a_real" not in access.text
