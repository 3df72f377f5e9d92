"""The engine: dispatches due attempts, applies provider events through the pure rules (`herald.engine.events`),
runs cycles.

One step = poll provider events → record them once → apply rules → start cycles → time out responses →
dispatch due contacts → end cycles. The same step runs under a virtual clock (simulation) or the real one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from herald.domain import rules
from herald.domain.campaign import CampaignConfig
from herald.domain.lifecycle import after_cycle_end
from herald.domain.scheduling import next_open, next_open_on_or_after
from herald.domain.statuses import (
    CallStatus,
    CampaignStatus,
    Channel,
)
from herald.engine.campaigns import change_status
from herald.engine.clock import Clock, VirtualClock
from herald.engine.context import CampaignContext
from herald.engine.events import EventApplier
from herald.ids import IdFactory
from herald.outbox import hooks as outbox
from herald.providers.base import CallRequest, MessageRequest, ProviderEvent, public_url
from herald.providers.simulator import Simulator
from herald.store import campaign_dnc, links, memory
from herald.store.memory import Memory, MemoryTx
from herald.store.queries import ContactChange, Store, Tx
from herald.store.records import Campaign, ContactRecord

TIMER_PROVIDER = "herald"
RUNNING = (CampaignStatus.ACTIVE, CampaignStatus.COOLDOWN)
_QUEUED = CallStatus.QUEUED.value
# A commit writes every page its batch dirtied to the WAL, and a simulation dirties the same contact and call pages
# step after step: a longer batch writes each of them once for more steps. Other readers of a simulated run see
# its progress up to this late (a real-clock run still commits every step).
BATCH_WALL_SECONDS = 1.0
LEASE_CHECK_EVERY = timedelta(minutes=1)
GATE_YIELD_SECONDS = 0.002

# A weekly schedule that never opens in UTC opens in no zone at all, so UTC answers "does it ever open?".
UTC_ZONE = ZoneInfo("UTC")


def first_message(config: CampaignConfig, name: str) -> str | None:
    """The agent's opening line for one contact (`{name}` filled in), or None when the campaign has none."""
    return (config.first_message or "").replace("{name}", name) or None


@dataclass
class RunStats:
    """What a run did."""

    steps: int = 0
    attempts: int = 0
    events: int = 0
    duplicate_events: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    finished_campaigns: list[int] = field(default_factory=list)


#: The base of exported recording URLs when HERALD_PUBLIC_URL is not set (simulated runs, the demo).
RECORDING_BASE_DEFAULT = "http://localhost:8000"


class Engine:
    """Runs campaigns against one provider on one clock."""

    def __init__(
        self,
        store: Store,
        provider: Simulator,
        clock: Clock,
        ids: IdFactory,
        *,
        tick: timedelta = timedelta(seconds=5),
        lease: timedelta = timedelta(hours=2),
        public_base_url: str | None = None,
    ) -> None:
        self.store = store
        self.provider = provider
        self.clock = clock
        self.ids = ids
        self.tick = tick
        self.lease = lease
        # SPEC §11: HERALD_PUBLIC_URL is the base of recording URLs too; unset, exports keep their historic base.
        self.public_base_url = (public_base_url or public_url(default=RECORDING_BASE_DEFAULT)).rstrip("/")
        self.stats = RunStats()
        #: Set by a live worker: dispatch then only claims (rows with `start_after`), and the worker starts the
        #: attempts after the claim has committed, outside the transaction.
        self.worker_id: int | None = None
        self._contexts: dict[int, CampaignContext] = {}
        self._next_lease_check: datetime | None = None
        self.events = EventApplier(self._context, self.public_base_url)

    # --- the loop ----------------------------------------------------------------------------------------------

    def run(
        self,
        campaign_ids: Sequence[int] | None = None,
        *,
        until: datetime | None = None,
        max_steps: int | None = None,
        on_step: Callable[[Engine], None] | None = None,
        progress: Callable[[Engine], None] | None = None,
        on_batch: Callable[[Tx], None] | None = None,
    ) -> RunStats:
        """Step until every campaign in scope is finished (or paused), nothing more can happen, or `until`.

        `on_step` runs after each step's commit, so it can read what the step wrote; with it, every step commits
        on its own. `progress` also runs after each step but does not wait for a commit (it is for progress bars
        that show the engine's stats and clock), so under a virtual clock several steps still share one.
        `on_batch` runs at the start of each write transaction, in it (a simulated run's heartbeat).
        """
        self.stats.started_at = self.stats.started_at or self.clock.now()
        # Under a virtual clock nobody waits between steps, so several share one commit (a commit costs more
        # than a small step); under the real clock every step commits before the engine sleeps.
        batch_seconds = BATCH_WALL_SECONDS if isinstance(self.clock, VirtualClock) and on_step is None else 0.0
        # A simulated run keeps its running phone campaigns in memory between batches (see herald.store.memory).
        view = (
            Memory(self.store)
            if isinstance(self.clock, VirtualClock) and self.worker_id is None and memory.usable(self.store)
            else None
        )
        begin: Callable[[], AbstractContextManager[Tx]] = self.store.tx if view is None else view.tx
        tx_context: AbstractContextManager[Tx] | None = None
        tx: Tx | None = None
        batch_started = 0.0
        try:
            while True:
                now = self.clock.now()
                if tx is None:
                    tx_context = begin()
                    tx = tx_context.__enter__()
                    batch_started = time.perf_counter()
                    if on_batch is not None:
                        on_batch(tx)
                wake, running = self._step(tx, now)
                self.stats.steps += 1
                if time.perf_counter() - batch_started >= batch_seconds:
                    assert tx_context is not None
                    tx_context.__exit__(None, None, None)
                    tx_context = tx = None
                    if batch_seconds:
                        # Let a process waiting for the write gate (a pause, a worker's heartbeat) take its turn
                        # before the next batch: the kernel wakes it at once, but it needs a moment to run.
                        time.sleep(GATE_YIELD_SECONDS)
                if on_step is not None:
                    on_step(self)
                if progress is not None:
                    progress(self)
                in_scope = [c for c in running if campaign_ids is None or c.campaign.id in campaign_ids]
                if not in_scope and self.provider.next_event_at() is None:
                    break
                if wake is None or (max_steps is not None and self.stats.steps >= max_steps):
                    break
                wake = max(wake, now + self.tick)
                if until is not None and wake > until:
                    break
                self.clock.wait_until(wake)
        except BaseException as error:
            if tx_context is not None:
                tx_context.__exit__(type(error), error, error.__traceback__)
                tx_context = None
            raise
        finally:
            try:
                if tx_context is not None:
                    tx_context.__exit__(None, None, None)
            finally:
                if view is not None:
                    view.close()
        self.stats.ended_at = self.clock.now()
        with self.store.tx() as tx:
            self.stats.finished_campaigns = [
                c.id for c in tx.campaigns([CampaignStatus.FINISHED]) if campaign_ids is None or c.id in campaign_ids
            ]
        return self.stats

    def step(self, now: datetime) -> tuple[datetime | None, list[CampaignContext]]:
        """Everything due at `now`, in one transaction; returns when to wake next and the campaigns still running."""
        with self.store.tx() as tx:
            return self._step(tx, now)

    def _step(self, tx: Tx, now: datetime) -> tuple[datetime | None, list[CampaignContext]]:
        events = self.provider.poll(now)
        if events:
            self.ingest(tx, events, now)
        running: list[CampaignContext] = []
        check_leases = self._next_lease_check is None or now >= self._next_lease_check
        if check_leases:
            # Leases last hours; looking once a minute is plenty and keeps the step cheap.
            self._next_lease_check = now + LEASE_CHECK_EVERY
        for campaign in tx.campaigns(RUNNING, lock=True):
            if check_leases:
                self._expire_leases(tx, campaign.id, now)
            context = self._refresh(campaign)
            context = self._start_cycle_if_due(tx, context, now)
            if context.campaign.status is CampaignStatus.ACTIVE:
                if campaign.channel is Channel.WHATSAPP:
                    self._response_timeouts(tx, context, now)
                context = self._dispatch(tx, context, now)
            if context.campaign.status in RUNNING:
                running.append(context)
        return self._next_wakeup(tx, running, now), running

    def _refresh(self, campaign: Campaign) -> CampaignContext:
        cached = self._contexts.get(campaign.id)
        if cached is not None and cached.campaign is campaign:
            return cached
        if cached is not None and cached.campaign.config is campaign.config:
            context = replace(cached, campaign=campaign)
        else:
            context = CampaignContext.of(campaign)
        self._contexts[campaign.id] = context
        return context

    def _context(self, campaign_id: int, tx: Tx) -> CampaignContext:
        context = self._contexts.get(campaign_id)
        if context is None:
            context = self._refresh(tx.campaign(campaign_id))
        return context

    def _next_wakeup(self, tx: Tx, running: Sequence[CampaignContext], now: datetime) -> datetime | None:
        candidates: list[datetime] = []
        provider_next = self.provider.next_event_at()
        if provider_next is not None:
            candidates.append(provider_next)
        for context in running:
            campaign = context.campaign
            if campaign.next_cycle_at is not None:
                candidates.append(campaign.next_cycle_at)
            if campaign.status is not CampaignStatus.ACTIVE:
                continue
            due = tx.next_due_at(campaign.id)
            if due is not None:
                if context.local_time:
                    # Each contact keeps its own hours: dispatch moves the closed ones to their opening.
                    opening = max(due, now) if next_open(context.window, UTC_ZONE, now) is not None else None
                else:
                    opening = next_open(context.window, context.zone, max(due, now))
                if opening is not None:
                    if campaign.channel is Channel.WHATSAPP and self._daily_room(tx, context, now) <= 0:
                        opening = max(opening, context.next_local_day(now))
                    candidates.append(opening)
            if campaign.channel is Channel.WHATSAPP:
                respond_by = tx.next_respond_by(campaign.id)
                if respond_by is not None:
                    candidates.append(respond_by)
            if provider_next is None:
                # Nothing announced by the provider: wake at the latest when a lease runs out.
                expiry = tx.next_lease_expiry(campaign.id)
                if expiry is not None:
                    candidates.append(max(expiry, self._next_lease_check or expiry))
        return min(candidates) if candidates else None

    # --- events --------------------------------------------------------------------------------------------------

    def ingest(self, tx: Tx, events: Sequence[ProviderEvent], now: datetime) -> None:
        """Record events once each, then apply the new ones through the rules (in-process: simulator, timers)."""
        fresh = tx.record_events(events, now)
        self.stats.events += len(fresh)
        self.stats.duplicate_events += len(events) - len(fresh)
        self.apply(tx, fresh, now)

    def apply(self, tx: Tx, events: Sequence[ProviderEvent], now: datetime) -> list[ProviderEvent]:
        """Apply recorded events through the rules (`herald.engine.events`); returns those whose call or message is
        not known (yet)."""
        return self.events.apply(tx, events, now)

    def _response_timeouts(self, tx: Tx, context: CampaignContext, now: datetime) -> None:
        overdue = tx.overdue_responses(context.campaign.id, now)
        if not overdue:
            return
        timers = [
            ProviderEvent(
                TIMER_PROVIDER, f"message-{record.current_message_id}", "response_timeout", now, subject="timer"
            )
            for record in overdue
        ]
        fresh = {event.external_id for event in tx.record_events(timers, now)}
        changes: list[ContactChange] = []
        for record in overdue:
            if f"message-{record.current_message_id}" in fresh:
                changes.append((record.id, rules.response_timeout(record.state, context.policy, now), {}))
        tx.save_contacts(changes, now)

    def _expire_leases(self, tx: Tx, campaign_id: int, now: datetime) -> None:
        """An attempt whose lease ran out failed: the same rules as any failure decide what comes next."""
        expired = tx.expired_attempts(campaign_id, now)
        if expired:
            events = [
                ProviderEvent(provider, external_id, "failed", now, data={"reason": "lease_expired"}, subject=subject)
                for subject, provider, external_id in expired
            ]
            self.ingest(tx, events, now)

    # --- cycles ------------------------------------------------------------------------------------------------

    def _start_cycle_if_due(self, tx: Tx, context: CampaignContext, now: datetime) -> CampaignContext:
        campaign = context.campaign
        if campaign.next_cycle_at is None or campaign.next_cycle_at > now:
            return context
        changes: list[ContactChange] = []
        for record in tx.all_contacts(campaign.id):
            state = rules.next_cycle(record.state, context.filter_statuses, context.filter_tags, now)
            if state is not None:
                changes.append((record.id, state, {"attempts_in_cycle": 0}))
        for start in range(0, len(changes), 5000):
            tx.save_contacts(changes[start : start + 5000], now)
        change_status(
            tx,
            campaign,
            CampaignStatus.ACTIVE,
            now,
            cycle_iteration=campaign.cycle_iteration + 1,
            next_cycle_at=None,
        )
        return self._refresh(tx.campaign(campaign.id))

    def _end_cycle_if_done(self, tx: Tx, context: CampaignContext, now: datetime) -> CampaignContext:
        campaign = context.campaign
        if tx.cycle_open(campaign.id) or tx.contact_count(campaign.id) == 0:
            return context
        cycles = campaign.config.cycles
        target = after_cycle_end(campaign.cycle_iteration, cycles.max_iterations, cycles.enabled)
        next_at: datetime | None = None
        if target is CampaignStatus.COOLDOWN:
            if cycles.mode == "cooldown":
                next_at = now + timedelta(minutes=cycles.cooldown_minutes)
            else:
                next_at = next_open_on_or_after(
                    context.cycle_window,
                    context.zone,
                    now + timedelta(minutes=1),
                    cycles.schedule_start_date,
                    cycles.schedule_end_date,
                )
                if next_at is None:
                    target = CampaignStatus.FINISHED
        tx.log(
            campaign.id,
            "campaign.cycle_completed",
            {
                "cycle_iteration": campaign.cycle_iteration,
                "next_cycle_at": next_at.isoformat() if next_at else None,
            },
            now,
        )
        outbox.cycle_completed(tx, campaign, target, next_at, now)
        change_status(tx, campaign, target, now, next_cycle_at=next_at, cycle_last_iteration_at=now)
        return self._refresh(tx.campaign(campaign.id))

    # --- dispatch ----------------------------------------------------------------------------------------------

    def _daily_room(self, tx: Tx, context: CampaignContext, now: datetime) -> int:
        sent_today = tx.messages_since(context.campaign.id, context.local_day_start(now))
        return context.campaign.config.daily_message_limit - sent_today

    def _dispatch(self, tx: Tx, context: CampaignContext, now: datetime) -> CampaignContext:
        """Start attempts for due contacts within the limits; end the cycle once nothing is left to do."""
        campaign = context.campaign
        config = campaign.config
        inflight = tx.inflight_count(campaign.id)
        room = config.concurrency_limit - inflight
        if campaign.channel is Channel.WHATSAPP:
            room = min(room, self._daily_room(tx, context, now))
        leased: list[ContactRecord] = []
        if room > 0 and (context.local_time or next_open(context.window, context.zone, now) == now):
            leased = self._lease(tx, context, room, now)
        if leased:
            self.stats.attempts += len(leased)
            if campaign.channel is Channel.PHONE_CALL:
                self._start_calls(tx, context, leased, now)
            else:
                self._send_messages(tx, context, leased, now)
            return context
        if inflight == 0:
            # Only with nothing in flight and nothing started can a cycle have ended.
            return self._end_cycle_if_done(tx, context, now)
        return context

    def _lease(self, tx: Tx, context: CampaignContext, room: int, now: datetime) -> list[ContactRecord]:
        """Up to `room` due contacts to attempt now. Opted-out numbers are closed instead; with `local_time`, a
        contact whose own hours are closed waits for them and its place goes to the next one due."""
        campaign = context.campaign
        leased: list[ContactRecord] = []
        taken: set[int] = set()
        while len(leased) < room:
            # Leased contacts stay due until their attempts start, and they come first: skip them on a refetch.
            due = [record for record in tx.due_contacts(campaign.id, now, room) if record.id not in taken]
            numbers = [record.contact for record in due]
            # The business's list and the campaign's own: a number on either closes as an opted-out contact.
            suppressed = self._barred(tx, campaign, numbers) if due else set()
            changes: list[ContactChange] = [
                (r.id, rules.opted_out(r.state), {}) for r in due if r.contact in suppressed
            ]
            ready = [record for record in due if record.contact not in suppressed]
            waiting = 0
            if context.local_time and context.window is not None:
                before = len(changes)
                ready = self._within_local_hours(context, ready, changes, now)
                waiting = len(changes) - before
            tx.save_contacts(changes, now)
            leased.extend(ready)
            taken.update(record.id for record in ready)
            if not waiting:
                break
        return leased

    def _barred(self, tx: Tx, campaign: Campaign, numbers: Sequence[str]) -> set[str]:
        """Which of `numbers` are on the business's suppression list or the campaign's own."""
        barred = tx.barred_numbers(campaign.business_id, campaign.id, numbers) if isinstance(tx, MemoryTx) else None
        if barred is None:
            barred = tx.suppressed_numbers(campaign.business_id, numbers) | campaign_dnc.listed_numbers(
                tx, campaign.id, numbers
            )
        return barred

    def _within_local_hours(
        self, context: CampaignContext, due: Sequence[ContactRecord], changes: list[ContactChange], now: datetime
    ) -> list[ContactRecord]:
        """The contacts whose own hours are open now; the others are moved to their next opening in `changes`."""
        ready: list[ContactRecord] = []
        for record in due:
            opening = next_open(context.window, context.zone_for(record.contact), now)
            if opening == now:
                ready.append(record)
            elif opening is not None:
                changes.append((record.id, rules.wait_until(record.state, opening), {}))
        return ready

    def _start_calls(self, tx: Tx, context: CampaignContext, leased: Sequence[ContactRecord], now: datetime) -> None:
        campaign = context.campaign
        config = campaign.config
        requests = [
            CallRequest(
                public_id=self.ids.call_id(),
                campaign_id=campaign.id,
                contact_id=record.id,
                to=record.contact,
                name=record.name,
                context=record.context,
                first_message=first_message(config, record.name),
                follow_up=record.state.follow_up and record.state.final,
                config=config,
                variables=record.input_variables,
            )
            for record in leased
        ]
        live = self.worker_id is not None
        # Simulated: nothing is committed until the step ends and the simulator is in this process, so the rows can
        # carry its ids from the start. Live: the rows are the claim; they commit before any provider is called.
        results = [None] * len(requests) if live else self.provider.start_calls(requests, now)
        rows: list[dict[str, Any]] = []
        failures: list[ProviderEvent] = []
        provider = config.provider if live else self.provider.name
        campaign_id, cycle = campaign.id, campaign.cycle_iteration
        for request, result in zip(requests, results, strict=True):
            row: dict[str, Any] = {
                "public_id": request.public_id,
                "campaign_id": campaign_id,
                "contact_id": request.contact_id,
                "provider": provider,
                "provider_call_id": None,
                "type": "outbound",
                "status": _QUEUED,
                "created_at": now,
                "follow_up": request.follow_up,
                "cycle": cycle,
                "tags": [],
                "extracted": {},
            }
            if result is None:
                row["start_after"] = now
                row["worker_id"] = self.worker_id
            else:
                external_id = result.external_id if result.ok and result.external_id else f"start-{request.public_id}"
                row["provider_call_id"] = external_id
                if not result.ok:
                    reason = result.error_msg or result.error_code or "provider_error"
                    failures.append(
                        ProviderEvent(self.provider.name, external_id, "failed", now, data={"reason": reason})
                    )
            rows.append(row)
        call_ids = tx.insert_calls(rows)
        lease_expires_at = now + self.lease
        changes: list[ContactChange] = [
            (
                record.id,
                rules.dispatch(record.state),
                {
                    "inflight_id": call_id,
                    "lease_expires_at": lease_expires_at,
                    "attempts_in_cycle": record.attempts_in_cycle + 1,
                },
            )
            for record, call_id in zip(leased, call_ids, strict=True)
        ]
        tx.save_contacts(changes, now)
        if failures:
            self.ingest(tx, failures, now)

    def _send_messages(self, tx: Tx, context: CampaignContext, leased: Sequence[ContactRecord], now: datetime) -> None:
        campaign = context.campaign
        config = campaign.config
        rows: list[dict[str, Any]] = []
        for record in leased:
            sendout_id = tx.sendout(
                campaign.id, campaign.cycle_iteration, record.attempts_in_cycle, self.ids.uuid(), now
            )
            template = config.template_alt if record.state.retries > 0 and config.template_alt else config.template
            rows.append(
                {
                    "campaign_id": campaign.id,
                    "contact_id": record.id,
                    "sendout_id": sendout_id,
                    "session_id": self.ids.uuid(),
                    "provider": self.provider.name,
                    "template": template or "",
                    "created_at": now,
                    "input_variables": {"name": record.name, **record.input_variables},
                    "button_clicks": [],
                    "link_clicks": [],
                    "output_variables": {},
                }
            )
        if self.worker_id is not None:
            for row in rows:
                row["provider"] = config.provider
                row["start_after"] = now
                row["worker_id"] = self.worker_id
        message_ids = tx.insert_messages(rows)
        changes = [
            (
                record.id,
                rules.dispatch(record.state),
                {
                    "inflight_id": message_id,
                    "current_message_id": message_id,
                    "lease_expires_at": now + self.lease,
                    "attempts_in_cycle": record.attempts_in_cycle + 1,
                },
            )
            for record, message_id in zip(leased, message_ids, strict=True)
        ]
        tx.save_contacts(changes, now)
        if self.worker_id is not None:
            return  # live: the claim commits first; the worker sends afterwards
        # Tracked links: their tokens are stored with the message rows, before the provider sees the URLs.
        variables = links.issue(
            tx,
            config,
            [(mid, row["input_variables"]) for mid, row in zip(message_ids, rows, strict=True)],
            now,
            public_url(),
        )
        requests = [
            MessageRequest(
                message_id=message_id,
                campaign_id=campaign.id,
                contact_id=record.id,
                to=record.contact,
                template=str(row["template"]),
                config=config,
                variables=values,
            )
            for record, message_id, row, values in zip(leased, message_ids, rows, variables, strict=True)
        ]
        results = self.provider.send_messages(requests, now)
        updates = []
        failures: list[ProviderEvent] = []
        for request, result in zip(requests, results, strict=True):
            external_id = result.external_id if result.ok and result.external_id else f"send-{request.message_id}"
            updates.append(
                {
                    "_id": request.message_id,
                    "provider_message_id": external_id,
                    "error_code": result.error_code,
                    "error_msg": result.error_msg,
                }
            )
            if not result.ok:
                data = {"error_code": result.error_code, "error_msg": result.error_msg}
                failures.append(
                    ProviderEvent(self.provider.name, external_id, "failed", now, data=data, subject="message")
                )
        tx.set_message_results(updates)
        if failures:
            self.ingest(tx, failures, now)
