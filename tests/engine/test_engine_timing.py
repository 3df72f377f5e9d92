"""Follow-ups, scheduled cycles and lease expiry through the engine on a real SQLite file."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.base import CallRequest, MessageRequest, ProviderEvent, StartResult
from herald.providers.simulator import Simulator
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, CampaignFactory, migrated_sqlite, phone_numbers

MX = ZoneInfo("America/Mexico_City")


def _local(value: datetime) -> datetime:
    return t.UTCDateTime().process_result_value(value, None).astimezone(MX)  # type: ignore[arg-type,union-attr]


def test_follow_ups_are_called_inside_the_agent_window(store: Store, campaign: CampaignFactory) -> None:
    options = {
        "phone": {"human": 1, "machine": 0, "unknown": 0, "no_answer": 0, "busy": 0, "failed": 0},
        "conversation": {"follow_up_rate": 1, "follow_up_hours_min": 2, "follow_up_hours_max": 60},
    }
    agent = {**AGENT, "follow_ups": {"startTime": "10:00", "stopTime": "12:00", "days": ["tue", "thu"]}}
    campaign_id, engine = campaign(contacts=12, agent=agent, provider_options=options)
    engine.run()
    with store.tx() as tx:
        calls = tx.connection.execute(select(t.calls).order_by(t.calls.c.id)).all()
        contacts = list(tx.all_contacts(campaign_id))
        assert tx.campaign(campaign_id).status is CampaignStatus.FINISHED
    follow_ups = [call for call in calls if call.follow_up]
    assert len(follow_ups) == 12  # one each: a follow-up call cannot schedule another
    for call in follow_ups:
        local = _local(call.created_at)
        assert local.strftime("%a") in ("Tue", "Thu") and 10 <= local.hour < 12, local
    assert all(not c.state.follow_up and c.state.retries == 0 for c in contacts)


def test_scheduled_cycles_wait_for_the_cycle_schedule(store: Store, campaign: CampaignFactory) -> None:
    window = {"startTime": "16:00", "stopTime": "17:00", "active": True}
    campaign_id, engine = campaign(
        contacts=5,
        retries=0,
        cycles={
            "enabled": True,
            "mode": "scheduled",
            "max_iterations": 2,
            "schedule": {"wed": window},
            "schedule_start_date": "2026-01-07",
        },
    )
    engine.run()
    with store.tx() as tx:
        log = tx.campaign_log(campaign_id)
        assert tx.campaign(campaign_id).status is CampaignStatus.FINISHED
    completed = [data for kind, _, data in log if kind == "campaign.cycle_completed"]
    next_at = datetime.fromisoformat(completed[0]["next_cycle_at"]).astimezone(MX)
    assert (next_at.date().isoformat(), next_at.hour, next_at.minute) == ("2026-01-07", 16, 0)
    restarted = [
        at for kind, at, data in log if kind == "campaign.status_changed" and data["previous_status"] == "cooldown"
    ]
    assert restarted[0].astimezone(MX) >= next_at


class SilentProvider:
    """Takes every attempt and never reports anything: the lease must bring the contacts back."""

    name = "silent"

    def __init__(self) -> None:
        self.started = 0

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        self.started += len(requests)
        return [StartResult(f"silent-{request.public_id}") for request in requests]

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        return [StartResult(f"silent-{request.message_id}") for request in requests]

    def poll(self, now: datetime) -> list[ProviderEvent]:
        return []

    def next_event_at(self) -> datetime | None:
        return None


def test_expired_leases_fail_the_attempt_and_follow_the_failed_rule(store: Store) -> None:
    clock = VirtualClock(START)
    ids = IdFactory(9)
    config = parse_campaign({"name": "L", "channel": "phone_call", "agent": AGENT, "failed_retry_limit": 1})
    campaign_id = create_campaign(store, config, START, ids)
    add_contacts(store, campaign_id, [NewContact(n, "x", "") for n in phone_numbers(3)], START)
    act(store, campaign_id, "activate", START)
    provider = SilentProvider()
    engine = Engine(store, provider, clock, ids, lease=timedelta(minutes=20))
    engine.run(until=START + timedelta(hours=3))
    with store.tx() as tx:
        calls = tx.connection.execute(select(t.calls.c.status, t.calls.c.ended_reason)).all()
        statuses = tx.status_counts(campaign_id)
        assert tx.campaign(campaign_id).status is CampaignStatus.FINISHED
    assert provider.started == 6  # first try + one failed retry each
    assert set(calls) == {("failed", "lease_expired")}
    assert statuses == {"failed": 3}


LOCAL_NUMBERS = {
    "America/New_York": [f"+1212736{3100 + i}" for i in range(4)],
    "America/Los_Angeles": [f"+1310825{4000 + i}" for i in range(4)],
    "America/Mexico_City": phone_numbers(4),
}
TOLL_FREE = "+18002752273"  # many zones: the campaign's zone applies


def _first_calls(store: Store, campaign_id: int) -> dict[str, datetime]:
    with store.tx() as tx:
        rows = tx.connection.execute(
            select(t.contacts.c.contact, t.calls.c.created_at)
            .join(t.calls, t.calls.c.contact_id == t.contacts.c.id)
            .where(t.contacts.c.campaign_id == campaign_id)
            .order_by(t.calls.c.id)
        ).all()
    first: dict[str, datetime] = {}
    for number, created in rows:
        first.setdefault(number, t.UTCDateTime().process_result_value(created, None))  # type: ignore[arg-type]
    return first


def test_local_time_calls_each_contact_in_its_own_hours(store: Store, campaign: CampaignFactory) -> None:
    hours = {"startTime": "09:00", "stopTime": "17:00", "active": True}
    numbers = [n for group in LOCAL_NUMBERS.values() for n in group] + [TOLL_FREE]
    campaign_id, engine = campaign(
        numbers=numbers,
        retries=0,
        local_time=True,
        scheduling={day: hours for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
    )
    engine.run()
    first = _first_calls(store, campaign_id)
    assert set(first) == set(numbers)
    for zone_name, group in LOCAL_NUMBERS.items():
        for number in group:
            local = first[number].astimezone(ZoneInfo(zone_name))
            assert 9 <= local.hour < 17, (number, local)
    # START is 09:00 in Mexico City, 10:00 in New York and 07:00 in Los Angeles: only Los Angeles waits.
    assert all(first[n] == START for n in LOCAL_NUMBERS["America/New_York"] + LOCAL_NUMBERS["America/Mexico_City"])
    assert all(first[n] == START + timedelta(hours=2) for n in LOCAL_NUMBERS["America/Los_Angeles"])
    assert first[TOLL_FREE] == START


def test_without_local_time_the_campaign_zone_rules(store: Store, campaign: CampaignFactory) -> None:
    hours = {"startTime": "09:00", "stopTime": "17:00", "active": True}
    numbers = LOCAL_NUMBERS["America/Los_Angeles"]
    campaign_id, engine = campaign(
        numbers=numbers, retries=0, scheduling={day: hours for day in ("mon", "tue", "wed", "thu", "fri")}
    )
    engine.run()
    assert set(_first_calls(store, campaign_id).values()) == {START}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    picks=st.lists(st.sampled_from([*LOCAL_NUMBERS, "toll-free"]), min_size=1, max_size=10),
    opens=st.integers(0, 20),
    length=st.integers(1, 6),
    retries=st.integers(0, 2),
    concurrency=st.integers(1, 6),
    seed=st.integers(0, 1000),
)
@example(picks=["America/New_York", "toll-free"], opens=19, length=6, retries=1, concurrency=1, seed=0)  # to midnight
def test_local_time_never_calls_outside_the_contacts_hours(
    picks: list[str], opens: int, length: int, retries: int, concurrency: int, seed: int
) -> None:
    numbers: list[str] = []
    zones: dict[str, ZoneInfo] = {}
    for index, pick in enumerate(picks):
        number = TOLL_FREE if pick == "toll-free" else LOCAL_NUMBERS[pick][0][:-2] + f"{index:02d}"
        zones[number] = MX if pick == "toll-free" else ZoneInfo(pick)
        numbers.append(number)
    numbers = list(dict.fromkeys(numbers))
    length = min(length, 24 - opens)  # a window ends by midnight ("24:00")
    hours = {"startTime": f"{opens:02d}:00", "stopTime": f"{opens + length:02d}:00", "active": True}
    options = {"conversation": {"follow_up_rate": 0}}
    with tempfile.TemporaryDirectory() as folder:
        store = Store.open(migrated_sqlite(Path(folder) / "h.db"))
        try:
            clock = VirtualClock(START)
            ids = IdFactory(seed)
            config = parse_campaign(
                {
                    "name": "L",
                    "channel": "phone_call",
                    "agent": AGENT,
                    "retries": retries,
                    "retry_delay_minutes": 45,
                    "concurrency_limit": concurrency,
                    "local_time": True,
                    "provider_options": options,
                    "scheduling": {day: hours for day in ("mon", "wed", "fri")},
                }
            )
            campaign_id = create_campaign(store, config, START, ids)
            add_contacts(store, campaign_id, [NewContact(n, "x", "") for n in numbers], START)
            act(store, campaign_id, "activate", START)
            Engine(store, Simulator(seed), clock, ids).run()
            with store.tx() as tx:
                assert tx.campaign(campaign_id).status is CampaignStatus.FINISHED
                rows = tx.connection.execute(
                    select(t.contacts.c.contact, t.calls.c.created_at).join(
                        t.calls, t.calls.c.contact_id == t.contacts.c.id
                    )
                ).all()
        finally:
            store.close()
    assert {number for number, _ in rows} == set(numbers)
    for number, created in rows:
        local = t.UTCDateTime().process_result_value(created, None).astimezone(zones[number])  # type: ignore[union-attr]
        assert local.strftime("%a") in ("Mon", "Wed", "Fri") and opens <= local.hour < opens + length, (number, local)
