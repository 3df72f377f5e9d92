"""The engine on a real SQLite file with the simulator: the SPEC's rules, end to end."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act
from herald.engine.runner import Engine
from herald.store import schema as t
from herald.store.queries import Store

from ..conftest import CampaignFactory

ALL_MACHINE = {"phone": {"human": 0, "machine": 1, "unknown": 0, "no_answer": 0, "busy": 0, "failed": 0}}
ALL_BUSY = {"phone": {"human": 0, "machine": 0, "unknown": 0, "no_answer": 0, "busy": 1, "failed": 0}}
ALL_HUMAN = {
    "phone": {"human": 1, "machine": 0, "unknown": 0, "no_answer": 0, "busy": 0, "failed": 0},
    "conversation": {"follow_up_rate": 0},
}


def _calls_per_contact(store: Store, campaign_id: int) -> Counter[int]:
    with store.tx() as tx:
        rows = tx.connection.execute(
            select(t.calls.c.contact_id, func.count())
            .where(t.calls.c.campaign_id == campaign_id)
            .group_by(t.calls.c.contact_id)
        )
        return Counter({row[0]: row[1] for row in rows})


def _contacts(store: Store, campaign_id: int) -> list[Any]:
    with store.tx() as tx:
        return list(tx.all_contacts(campaign_id))


def test_voicemail_gets_one_call_plus_retries(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(contacts=10, retries=2, provider_options=ALL_MACHINE)
    engine.run()
    assert set(_calls_per_contact(store, campaign_id).values()) == {3}
    contacts = _contacts(store, campaign_id)
    assert {(c.state.status.value, c.state.retries, c.state.calls, c.state.billed_seconds <= 15) for c in contacts} == {
        ("voicemail", 2, 3, True)
    }
    with store.tx() as tx:
        assert tx.campaign(campaign_id).status is CampaignStatus.FINISHED


def test_busy_gets_one_call_plus_failed_retry_limit(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(contacts=10, retries=3, failed_retry_limit=2, provider_options=ALL_BUSY)
    engine.run()
    assert set(_calls_per_contact(store, campaign_id).values()) == {3}
    assert {
        (c.state.status.value, c.state.failed_retries, c.state.billed_seconds) for c in _contacts(store, campaign_id)
    } == {("failed", 2, 0)}


def test_cycles_requeue_and_reset_counters(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(
        contacts=5,
        retries=1,
        provider_options=ALL_MACHINE,
        cycles={"enabled": True, "max_iterations": 3, "cooldown_minutes": 30},
    )
    engine.run()
    assert set(_calls_per_contact(store, campaign_id).values()) == {3 * 2}
    with store.tx() as tx:
        log = tx.campaign_log(campaign_id)
        finished = tx.campaign(campaign_id)
        cycles_by_contact = tx.connection.execute(
            select(t.calls.c.cycle, func.count()).where(t.calls.c.campaign_id == campaign_id).group_by(t.calls.c.cycle)
        ).all()
    completed = [data for kind, _, data in log if kind == "campaign.cycle_completed"]
    assert [entry["cycle_iteration"] for entry in completed] == [1, 2, 3]
    assert completed[-1]["next_cycle_at"] is None and completed[0]["next_cycle_at"] is not None
    statuses = [data["new_status"] for kind, _, data in log if kind == "campaign.status_changed"]
    assert statuses == ["ready", "active", "cooldown", "active", "cooldown", "active", "finished"]
    assert finished.status is CampaignStatus.FINISHED and finished.cycle_iteration == 3
    assert sorted(cycles_by_contact) == [(1, 10), (2, 10), (3, 10)]
    cooldown_entries = [
        at for kind, at, data in log if kind == "campaign.status_changed" and data["new_status"] == "cooldown"
    ]
    active_entries = [
        at for kind, at, data in log if kind == "campaign.status_changed" and data["new_status"] == "active"
    ]
    assert active_entries[1] - cooldown_entries[0] >= timedelta(minutes=30)


def test_converted_and_filtered_contacts_are_not_called_again(store: Store, campaign: CampaignFactory) -> None:
    options = {**ALL_HUMAN, "conversation": {"follow_up_rate": 0, "tag_rate": 0.5}}
    campaign_id, engine = campaign(
        contacts=30,
        provider_options=options,
        cycles={"enabled": True, "max_iterations": 3, "cooldown_minutes": 0, "filter_tags": ["callback"]},
    )
    engine.run()
    calls = _calls_per_contact(store, campaign_id)
    for contact in _contacts(store, campaign_id):
        if "callback" in contact.state.tags and calls[contact.id] < 3:
            # A contact leaves the loop the cycle it got the filtered tag or converted, never later.
            assert contact.state.status.value in ("answered", "converted")
    converted_first = [c for c in _contacts(store, campaign_id) if c.state.status.value == "converted"]
    assert converted_first, "with a 50% tag rate some contacts convert"
    assert max(calls.values()) == 3 and min(calls.values()) == 1


def test_concurrency_limit_and_window_are_respected(store: Store, campaign: CampaignFactory) -> None:
    hours = {"startTime": "09:00", "stopTime": "11:00", "active": True}
    campaign_id, engine = campaign(
        contacts=60,
        concurrency_limit=4,
        retries=1,
        scheduling={day: hours for day in ("mon", "tue", "wed", "thu", "fri")},
    )
    peaks: list[int] = []

    def watch(current: Engine) -> None:
        with store.tx() as tx:
            peaks.append(tx.inflight_count(campaign_id))

    engine.run(on_step=watch)
    assert max(peaks) == 4
    zone = ZoneInfo("America/Mexico_City")
    with store.tx() as tx:
        created = (
            tx.connection.execute(select(t.calls.c.created_at).where(t.calls.c.campaign_id == campaign_id))
            .scalars()
            .all()
        )
    for value in created:
        local = t.UTCDateTime().process_result_value(value, None).astimezone(zone)  # type: ignore[arg-type]
        assert local.weekday() < 5 and 9 <= local.hour < 11, local


def test_pause_stops_dispatch_and_resume_continues(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(contacts=30, concurrency_limit=2)
    engine.run(max_steps=3)
    act(store, campaign_id, "pause", engine.clock.now())
    with store.tx() as tx:
        before = tx.connection.execute(select(func.count()).select_from(t.calls)).scalar_one()
    engine.run(until=engine.clock.now() + timedelta(hours=3))
    with store.tx() as tx:
        after_pause = tx.connection.execute(select(func.count()).select_from(t.calls)).scalar_one()
        assert tx.campaign(campaign_id).status is CampaignStatus.INACTIVE
    assert after_pause == before  # calls in flight finish, no new ones start
    act(store, campaign_id, "resume", engine.clock.now())
    engine.run()
    with store.tx() as tx:
        assert tx.campaign(campaign_id).status is CampaignStatus.FINISHED
        assert tx.connection.execute(select(func.count()).select_from(t.calls)).scalar_one() > after_pause


def test_replaying_every_event_changes_nothing(store: Store, campaign: CampaignFactory) -> None:
    from herald.providers.base import ProviderEvent

    _campaign_id, engine = campaign(
        contacts=25, retries=2, cycles={"enabled": True, "max_iterations": 2, "cooldown_minutes": 5}
    )
    engine.run()

    def snapshot() -> tuple[list[Any], list[Any]]:
        with store.tx() as tx:
            contacts = tx.connection.execute(select(t.contacts).order_by(t.contacts.c.id)).all()
            calls = tx.connection.execute(select(t.calls).order_by(t.calls.c.id)).all()
        return contacts, calls

    before = snapshot()
    with store.tx() as tx:
        stored = tx.connection.execute(select(t.events).where(t.events.c.provider == "simulator")).all()
        replay = [
            ProviderEvent(
                row.provider,
                row.external_id,
                row.kind,
                t.UTCDateTime().process_result_value(row.occurred_at, None),
                data=row.payload,
            )  # type: ignore[arg-type]
            for row in stored
        ]
        assert replay
        engine.ingest(tx, replay, engine.clock.now())
    assert snapshot() == before
    assert engine.stats.duplicate_events >= len(replay)


def test_calls_table_matches_contact_counters(store: Store, campaign: CampaignFactory) -> None:
    campaign_id, engine = campaign(
        contacts=40, retries=2, cycles={"enabled": True, "max_iterations": 2, "cooldown_minutes": 0}
    )
    engine.run()
    with store.tx() as tx:
        sums = {
            row.contact_id: (row.n, row.billed)
            for row in tx.connection.execute(
                select(
                    t.calls.c.contact_id, func.count().label("n"), func.sum(t.calls.c.billed_seconds).label("billed")
                ).group_by(t.calls.c.contact_id)
            )
        }
    for contact in _contacts(store, campaign_id):
        assert (contact.state.calls, contact.state.billed_seconds) == sums[contact.id]
