"""Follow-ups, scheduled cycles and lease expiry through the engine on a real SQLite file."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select

from herald.domain.campaign import parse_campaign
from herald.domain.statuses import CampaignStatus
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.ids import IdFactory
from herald.providers.base import CallRequest, MessageRequest, ProviderEvent, StartResult
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import AGENT, START, CampaignFactory, phone_numbers

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
