"""`herald forecast` and `GET /campaigns/{id}/forecast`: a campaign run to its end by the simulator, on a copy.

The campaign's configuration, contacts (as they stand: a running campaign forecasts what remains) and the
do-not-call entries for its numbers are read in one snapshot of the real database, which is never written. Each run
loads them into a fresh SQLite file in a temporary folder and runs the simulated engine there on a virtual clock; the
figures of the runs are summarised by `herald.forecast`.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, insert, select

from herald.domain.campaign import CampaignConfig
from herald.domain.statuses import CampaignStatus, Channel
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.forecast import RunFigures, Summary, conversions, reach, summarise
from herald.ids import IdFactory
from herald.providers.simulator import NAME as SIMULATOR
from herald.providers.simulator import Simulator
from herald.store import schema as t
from herald.store.queries import NotFound, Store

#: Above this many contacts a forecast simulates a seeded sample of them, with the concurrency and daily message
#: limits scaled down alike, and scales the counts back up (days stay as simulated). A simulated WhatsApp contact
#: costs several times a phone contact (receipts, replies and response timeouts are engine steps of their own).
MAX_SIMULATED_CONTACTS: dict[Channel, int] = {Channel.PHONE_CALL: 2_000, Channel.WHATSAPP: 250}
#: A run stops here even if the campaign has not ended (a scheduled cycle far ahead, a paused provider).
HORIZON = timedelta(days=366)
MAX_RUNS = 10
# Statuses that wait for a user's action; the forecast assumes it is taken at its start.
_STARTS = {CampaignStatus.PENDING, CampaignStatus.READY, CampaignStatus.INACTIVE}


@dataclass(frozen=True, slots=True)
class Forecast:
    """A campaign's forecast: what it is now, and the summary of the simulated runs from `start`."""

    campaign_id: int
    channel: Channel
    status: CampaignStatus
    start: datetime
    seed: int
    contacts: int
    remaining: int  # contacts still owed an attempt (or in flight) at the start
    simulated_contacts: int  # `contacts`, or the sample's size
    outcome_mix: Literal["campaign", "simulator defaults"]
    current_reach: int
    current_conversions: int
    summary: Summary

    def as_json(self) -> dict[str, Any]:
        """The forecast as `herald forecast --json` prints it and the API answers it."""
        summary = self.summary
        phone = whatsapp = None
        if self.channel is Channel.PHONE_CALL:
            phone = {
                "calls": asdict(summary.attempts),
                "answered_calls": {who: asdict(value) for who, value in summary.calls_by_answered_by.items()},
                "billed_minutes": {who: asdict(value) for who, value in summary.billed_minutes.items()},
            }
        else:
            whatsapp = {
                "messages": asdict(summary.attempts),
                "delivered": asdict(summary.delivered),
                "read": asdict(summary.read),
                "replies": asdict(summary.replies),
            }
        return {
            "campaign_id": self.campaign_id,
            "channel": self.channel.value,
            "status": self.status.value,
            "start": self.start.isoformat(),
            "seed": self.seed,
            "runs": summary.runs,
            "finished_runs": summary.finished_runs,
            "contacts": self.contacts,
            "remaining": self.remaining,
            "simulated_contacts": self.simulated_contacts,
            "sampled": self.simulated_contacts < self.contacts,
            "outcome_mix": self.outcome_mix,
            "current": {"reach": self.current_reach, "conversions": self.current_conversions},
            "reach": asdict(summary.reach),
            "conversions": asdict(summary.conversions),
            "days_to_finish": None if summary.days is None else asdict(summary.days),
            "phone": phone,
            "whatsapp": whatsapp,
        }


@dataclass(frozen=True, slots=True)
class _Snapshot:
    business: dict[str, Any]
    campaign: dict[str, Any]
    contacts: list[dict[str, Any]]
    suppressions: list[dict[str, Any]]
    campaign_suppressions: list[dict[str, Any]]


def _read(store: Store, campaign_id: int, business_id: int | None) -> _Snapshot:
    """Everything a run needs, in one read-only snapshot of the real database."""
    with store.read() as tx:
        c = tx.connection
        campaign = c.execute(select(t.campaigns).where(t.campaigns.c.id == campaign_id)).mappings().first()
        if campaign is None or (business_id is not None and campaign["business_id"] != business_id):
            raise NotFound(f"campaign {campaign_id} does not exist")
        business = c.execute(select(t.businesses).where(t.businesses.c.id == campaign["business_id"])).mappings().one()
        contacts = [
            dict(row)
            for row in c.execute(
                select(t.contacts).where(t.contacts.c.campaign_id == campaign_id).order_by(t.contacts.c.id)
            ).mappings()
        ]
        numbers = {row["contact"] for row in contacts}
        # The lists can be long; only entries for the campaign's own numbers can matter to it.
        suppressions = [
            dict(row)
            for row in c.execute(
                select(t.suppressions).where(t.suppressions.c.business_id == campaign["business_id"])
            ).mappings()
            if row["contact"] in numbers
        ]
        listed = [
            dict(row)
            for row in c.execute(
                select(t.campaign_suppressions).where(t.campaign_suppressions.c.campaign_id == campaign_id)
            ).mappings()
        ]
    return _Snapshot(dict(business), dict(campaign), contacts, suppressions, listed)


def sample_size(total: int, cap: int, limit: int) -> int:
    """How many of `total` contacts to simulate: all up to `cap`, else about `cap`, chosen so that the campaign's
    binding limit (`limit`) scales to a whole number (limit 10 at 10,000 contacts and cap 2,000: 2,000 and 2; limit
    250 at 10,000 and cap 500: 480 and 12, not 500 and 12.5 rounded). A limit too small to scale (its share of the
    cap under 1) keeps `cap` with a limit of 1: that forecast's days run long."""
    if total <= cap:
        return total
    share = cap * limit // total
    if share < 1 or limit >= total:  # (a limit above the contacts never paces the campaign, nor the sample)
        return cap
    return total * share // limit


def _binding_limit(channel: Channel, config: CampaignConfig) -> int:
    """The limit that paces the campaign: calls in flight (phone) or messages a day (WhatsApp)."""
    return config.concurrency_limit if channel is Channel.PHONE_CALL else config.daily_message_limit


def _awaiting(row: dict[str, Any]) -> bool:
    """A contact the campaign still owes an attempt (first, retry or follow-up), or one in flight."""
    owed = not row["final"] and row["status"] in ("queue", "retrying")
    return bool(owed or row["follow_up"] or row["inflight_id"] is not None)


def _shifted(row: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    """`row` with every time moved by `delta` (a forecast from another time than now: as if it were then)."""
    if not delta:
        return dict(row)
    return {key: value + delta if isinstance(value, datetime) else value for key, value in row.items()}


def _prepared(
    snapshot: _Snapshot, start: datetime, delta: timedelta, contacts: list[dict[str, Any]], ratio: float
) -> tuple[dict[str, Any], list[dict[str, Any]], bool]:
    """The campaign and contact rows as a run loads them, and whether the campaign's own outcome mix is kept."""
    campaign = dict(_shifted(snapshot.campaign, delta), agent_id=None, integration_id=None)
    config = dict(campaign["config"])
    own_mix = config.get("provider", SIMULATOR) == SIMULATOR
    if not own_mix:
        # Another provider's options mean nothing to the simulator: its default outcome mix stands in.
        config.update(provider=SIMULATOR, provider_options={})
    if ratio < 1:
        parsed = CampaignConfig.model_validate(snapshot.campaign["config"])
        config["concurrency_limit"] = max(1, round(parsed.concurrency_limit * ratio))
        if parsed.channel is Channel.WHATSAPP:  # (a phone campaign's file may not name a message limit)
            config["message_limit"] = max(1, round(parsed.daily_message_limit * ratio))
    campaign["config"] = config
    status = CampaignStatus(campaign["status"])
    if status in _STARTS and contacts:
        campaign["status"] = CampaignStatus.ACTIVE.value
        campaign["started_at"] = campaign["started_at"] or start
    rows = []
    for row in contacts:
        copy = dict(_shifted(row, delta), inflight_id=None, lease_expires_at=None, current_message_id=None)
        if row["inflight_id"] is not None:
            # The simulator cannot finish an attempt another provider holds: it is made again at the start.
            copy["due_at"] = start
        rows.append(copy)
    return campaign, rows, own_mix


def _run(
    folder: Path,
    schema: Path,
    snapshot: _Snapshot,
    campaign: dict[str, Any],
    contacts: list[dict[str, Any]],
    start: datetime,
    seed: int,
) -> RunFigures:
    """One simulated run on a fresh SQLite file in `folder` (a copy of the migrated `schema`), and its figures."""
    database = folder / f"forecast-{seed}.db"
    shutil.copyfile(schema, database)
    store = Store.open(f"sqlite:///{database}", migrate=False)
    try:
        with store.tx() as tx:
            c = tx.connection
            c.execute(insert(t.businesses), [snapshot.business])
            c.execute(insert(t.campaigns), [campaign])
            if contacts:
                c.execute(insert(t.contacts), contacts)
            if snapshot.suppressions:
                c.execute(insert(t.suppressions), snapshot.suppressions)
            if snapshot.campaign_suppressions:
                c.execute(insert(t.campaign_suppressions), snapshot.campaign_suppressions)
        campaign_id = campaign["id"]
        clock = VirtualClock(start)
        Engine(store, Simulator(seed), clock, IdFactory(seed)).run([campaign_id], until=start + HORIZON)
        return _figures(store, campaign_id, Channel(campaign["channel"]), start)
    finally:
        store.close()


def _figures(store: Store, campaign_id: int, channel: Channel, start: datetime) -> RunFigures:
    with store.read() as tx:
        counts = tx.status_counts(campaign_id)
        row = tx.connection.execute(
            select(t.campaigns.c.status, t.campaigns.c.ended_at).where(t.campaigns.c.id == campaign_id)
        ).one()
        days = (
            round(max(0.0, (row.ended_at - start).total_seconds()) / 86400, 2)
            if row.status == CampaignStatus.FINISHED.value and row.ended_at is not None
            else None
        )
        if channel is Channel.PHONE_CALL:
            k = t.calls.c
            by_who = tx.connection.execute(
                select(k.answered_by, func.count(), func.sum(k.billed_seconds))
                .where(k.campaign_id == campaign_id)
                .group_by(k.answered_by)
            ).all()
            return RunFigures(
                reach=reach(channel, counts),
                conversions=conversions(counts),
                attempts=sum(int(n) for _, n, _ in by_who),
                days=days,
                billed_seconds={str(who): int(seconds or 0) for who, _, seconds in by_who if who},
                calls_by_answered_by={str(who): int(n) for who, n, _ in by_who if who},
            )
        m = t.messages.c
        sent, delivered, read = tx.connection.execute(
            select(func.count(), func.count(m.delivered_at), func.count(m.read_at)).where(m.campaign_id == campaign_id)
        ).one()
        replies = tx.connection.execute(
            select(func.count()).select_from(t.events).where(t.events.c.kind == "reply")
        ).scalar_one()
    return RunFigures(
        reach=reach(channel, counts),
        conversions=conversions(counts),
        attempts=int(sent),
        days=days,
        delivered=int(delivered),
        read=int(read),
        replies=int(replies),
    )


def forecast_campaign(
    store: Store,
    campaign_id: int,
    start: datetime,
    *,
    runs: int = 1,
    seed: int = 0,
    now: datetime | None = None,
    business_id: int | None = None,
    max_contacts: int | None = None,
) -> Forecast:
    """Forecast a campaign from `start` with `runs` simulated runs (seeds `seed`, `seed`+1, …); reads `store` once
    and never writes to it. With `now` before or after `start`, the campaign is taken as if its present state held
    at `start` (every stored time moves by `start - now`). `business_id` scopes the lookup (another business's
    campaign is NotFound). `max_contacts` overrides the channel's sample threshold (`MAX_SIMULATED_CONTACTS`)."""
    if not 1 <= runs <= MAX_RUNS:
        raise ValueError(f"runs must be between 1 and {MAX_RUNS}")
    snapshot = _read(store, campaign_id, business_id)
    channel = Channel(snapshot.campaign["channel"])
    everyone = snapshot.contacts
    counts: dict[str, int] = {}
    for row in everyone:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    contacts = everyone
    if max_contacts is None:
        max_contacts = MAX_SIMULATED_CONTACTS[channel]
    config = CampaignConfig.model_validate(snapshot.campaign["config"])
    size = sample_size(len(everyone), max_contacts, _binding_limit(channel, config))
    if size < len(everyone):
        # A seeded sample, kept in id order so that it is dispatched in the campaign's order.
        chosen = set(random.Random(seed).sample(range(len(everyone)), size))
        contacts = [row for index, row in enumerate(everyone) if index in chosen]
    ratio = len(contacts) / len(everyone) if everyone else 1.0
    campaign, rows, own_mix = _prepared(snapshot, start, start - (now or start), contacts, ratio)
    with tempfile.TemporaryDirectory(prefix="herald-forecast-") as folder:
        # Migrated once per forecast and copied for each run: migrating is most of a small campaign's run.
        schema = Path(folder) / "schema.db"
        Store.open(f"sqlite:///{schema}").close()
        figures = [_run(Path(folder), schema, snapshot, campaign, rows, start, seed + n) for n in range(runs)]
    return Forecast(
        campaign_id=campaign_id,
        channel=channel,
        status=CampaignStatus(snapshot.campaign["status"]),
        start=start,
        seed=seed,
        contacts=len(everyone),
        remaining=sum(1 for row in everyone if _awaiting(row)),
        simulated_contacts=len(contacts),
        outcome_mix="campaign" if own_mix else "simulator defaults",
        current_reach=reach(channel, counts),
        current_conversions=conversions(counts),
        summary=summarise(figures, scale=1 / ratio),
    )
