"""`herald worker`: the live engine. Any number of workers, in any number of processes, on one database.

Each round is a few short transactions, none of which calls a provider:
1. take back the claims of workers whose heartbeat stopped (every few seconds);
2. drain the inbox: events received by `herald serve` (or scheduled by the live simulator) go through the rules;
3. per running campaign, with the campaign locked: expire leases, start a due cycle, time out WhatsApp responses,
   claim due contacts within `concurrency_limit` and the daily message limit, end a finished cycle; the claim
   (the call or message row with Herald's id) commits here;
4. start the claimed attempts at their providers, outside any transaction, and record each answer.
`herald worker` (`run()`) does step 4 in a thread of its own, the starter, so a round does not wait for providers'
answers: while one batch of starts is in flight the main thread goes on applying events and claiming. Only the
starter takes this worker's claims, so none is started twice. (`round()` alone, as `herald run` and tests use it, does
the four steps in turn.)
What must hold across processes is decided by the database in the statement that changes the row (locks, SKIP
LOCKED, conditional updates), never by one process's memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import DBAPIError

from herald.domain.statuses import CampaignStatus, Channel
from herald.engine.campaigns import change_status
from herald.engine.clock import Clock, RealClock
from herald.engine.runner import RUNNING, Engine, first_message
from herald.ids import IdFactory
from herald.outbox.delivery import Deliverer, start_for_worker
from herald.providers import registry
from herald.providers.base import (
    CallRequest,
    MessageRequest,
    Outbound,
    ProviderEvent,
    StartError,
    StartResult,
    Throughput,
    public_url,
)
from herald.providers.simulator import SchedulesEvents, Simulator
from herald.store import claims, inbox, links, throttle
from herald.store.queries import NOTIFY_CHANNEL, Conflict, Store, Tx
from herald.store.records import Campaign

log = logging.getLogger("herald.worker")

#: How long a worker may go without a heartbeat before the others take its claims back.
STALE_AFTER = timedelta(seconds=20)
HEARTBEAT_EVERY = 3.0
RECOVER_EVERY = timedelta(seconds=5)
LEASE_CHECK_EVERY = timedelta(seconds=30)
#: How far ahead a worker reserves start slots of a rate-limited provider (and sleeps to reach them).
PACE_HORIZON = 1.0
#: The starter is woken by each claim; on its own it looks for due starts (retries, a dead worker's) this often.
STARTER_POLL = 1.0
#: Under load every webhook's NOTIFY would start a round; a woken worker lets this much pass since its last round
#: began, so rounds take the events in batches and the queries every round makes are paid less often.
ROUND_GAP = 0.025
#: Under a heavy load the gap grows with the events the last drain took (this much per event, up to ROUND_GAP_MAX):
#: fewer, fuller rounds cost less CPU per attempt (measured with 4 workers on 2 cores: 0.12 s against 0.025 s,
#: ~2.1 against ~2.5 ms per attempt), while a light load (a campaign with a small concurrency_limit) keeps the short
#: gap its latency needs.
ROUND_GAP_PER_EVENT = 0.0015
ROUND_GAP_MAX = 0.12


@dataclass
class WorkerStats:
    """What a worker did."""

    rounds: int = 0
    claimed: int = 0
    started: int = 0
    start_retries: int = 0
    start_rejected: int = 0
    events_applied: int = 0
    events_postponed: int = 0
    recovered: int = 0
    errors: int = 0
    #: Drains that found nothing to take, and campaigns found locked by another worker: rounds that did no work.
    empty_drains: int = 0
    campaigns_held: int = 0
    campaigns_paused: list[int] = field(default_factory=list)


class _Outbounds:
    """One outbound adapter per campaign and provider options, rebuilt when the options change."""

    def __init__(self, factory: Callable[[str, BaseModel], Outbound] | None = None) -> None:
        self._factory = factory
        self._made: dict[tuple[int, str], Outbound] = {}
        # The main thread and the starter both ask; one adapter per key, or the other's pool would never close.
        self._lock = threading.Lock()

    def get(self, campaign: Campaign) -> Outbound:
        config = campaign.config
        key = (campaign.id, repr(sorted(config.provider_options.items())) + config.provider)
        with self._lock:
            return self._get(key, config.provider, config.provider_options)

    def _get(self, key: tuple[int, str], provider: str, provider_options: dict[str, Any]) -> Outbound:
        found = self._made.get(key)
        if found is None:
            options = registry.validate_options(provider, provider_options)
            if self._factory is not None:
                found = self._factory(provider, options)
            else:
                found = registry.spec(provider).make_outbound(options)
            self._made[key] = found
        return found

    def close(self) -> None:
        """Release what the adapters hold (HTTP connection pools, threads)."""
        with self._lock:
            made, self._made = list(self._made.values()), {}
        for outbound in made:
            close = getattr(outbound, "close", None)
            if callable(close):
                close()


class Membership:
    """This process's row in `workers`, kept alive by a heartbeat thread with its own transactions."""

    def __init__(self, store: Store, kind: str, on_lost: Callable[[], None]) -> None:
        self.store = store
        self._on_lost = on_lost
        self._done = threading.Event()
        # Heartbeats are about real processes, so they are on the wall clock whatever clock the engine runs on.
        with store.tx() as tx:
            self.id = claims.register(tx, kind, RealClock().now())
        self._last_beat = time.monotonic()
        self._thread = threading.Thread(target=self._beat, name="herald-heartbeat", daemon=True)
        self._thread.start()

    def beat(self, tx: Tx) -> None:
        """Beat inside a write transaction of the caller's, when one is due; the thread then has nothing to do.

        A simulated run beats this way at the start of its batches: a commit of the thread's own would be another
        connection's commit, after which the run's in-memory view has to be read again (herald.store.memory).
        """
        if time.monotonic() - self._last_beat < HEARTBEAT_EVERY / 2:
            return
        self._last_beat = time.monotonic()
        if not claims.heartbeat(tx, self.id, RealClock().now()):
            log.error("worker %s was declared dead by another process; stopping", self.id)
            self._on_lost()

    def _beat(self) -> None:
        while not self._done.wait(HEARTBEAT_EVERY):
            if time.monotonic() - self._last_beat < HEARTBEAT_EVERY:
                continue  # beaten meanwhile by `beat`
            self._last_beat = time.monotonic()
            try:
                with self.store.tx() as tx:
                    alive = claims.heartbeat(tx, self.id, RealClock().now())
            except DBAPIError as error:
                log.warning("heartbeat failed: %s", error)
                continue
            if not alive:
                log.error("worker %s was declared dead by another process; stopping", self.id)
                self._on_lost()
                return

    def close(self, reason: str = "stopped") -> None:
        """Stop beating and mark this process stopped."""
        self._done.set()
        self._thread.join()
        with self.store.tx() as tx:
            claims.stop(tx, self.id, RealClock().now(), reason)


class _Waker:
    """Waits between rounds until new work is announced or the poll interval passes.

    On PostgreSQL a worker LISTENs on `herald_work`, which webhooks, activations and imports NOTIFY when they commit,
    so it wakes at once; on SQLite (one machine) it polls.
    """

    def __init__(self, store: Store, stop: threading.Event) -> None:
        self._stop = stop
        self._listener: Any = None
        if store.engine.dialect.name == "postgresql":
            try:
                self._listener = store.engine.raw_connection()
                driver = self._listener.driver_connection
                driver.autocommit = True
                driver.execute(f"LISTEN {NOTIFY_CHANNEL}")
            except DBAPIError as error:  # fall back to polling
                log.warning("LISTEN failed, polling instead: %s", error)
                self._listener = None

    def wait(self, seconds: float) -> bool:
        """Wait; True when something else than stored webhook events was announced (an activation, an import)."""
        if self._listener is None:
            self._stop.wait(seconds)
            return False
        deadline = time.monotonic() + seconds
        try:
            # In short slices, so that a stop asked for meanwhile is seen within half a second.
            driver = self._listener.driver_connection
            while not self._stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
                first = list(driver.notifies(timeout=min(remaining, 0.5), stop_after=1))
                if first:
                    # Every webhook notifies: the ones queued meanwhile are taken too (after the first generator has
                    # let go of the connection's lock), so a burst is one round, not one round each.
                    notices = first + list(driver.notifies(timeout=0))
                    return any(notice.payload != inbox.EVENTS_NOTICE for notice in notices)
        except Exception as error:  # a broken listening connection must not stop the worker: poll instead
            log.warning("LISTEN connection lost, polling instead: %s", error)
            self.close()
            self._stop.wait(seconds)
        return False

    def close(self) -> None:
        if self._listener is not None:
            try:
                self._listener.close()
            finally:
                self._listener = None


class Worker:
    """Claims due work, calls providers, applies events, until told to stop."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock | None = None,
        ids: IdFactory | None = None,
        poll_seconds: float = 1.0,
        batch: int = 500,
        campaign_ids: Sequence[int] | None = None,
        outbound_factory: Callable[[str, BaseModel], Outbound] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock or RealClock()
        self.poll_seconds = poll_seconds
        self.batch = batch
        self.campaign_ids = set(campaign_ids) if campaign_ids else None
        self.stats = WorkerStats()
        # The engine's rules and dispatch, in claim-only mode: its simulator is never called here.
        self.engine = Engine(store, Simulator(), self.clock, ids or IdFactory())
        # The starter's own (an Engine is not thread-safe): it applies the `failed` events of refused starts.
        self._start_engine = Engine(store, Simulator(), self.clock, IdFactory())
        self.outbounds = _Outbounds(outbound_factory)
        self.worker_id = 0
        self._next_recover: datetime | None = None
        self._next_lease_check: datetime | None = None
        self._stop = threading.Event()
        self._membership: Membership | None = None
        self._deliverer: Deliverer | None = None
        self._starter: threading.Thread | None = None
        #: Set when there may be claims to start (the starter's wake-up); `_closing` makes its next idle pass its last.
        self._to_start = threading.Event()
        self._closing = threading.Event()
        self._starter_error: BaseException | None = None
        #: Set by a drain that left events in the inbox because another worker held their call.
        self._held_back = False
        #: How long a woken worker lets pass since its last round began (ROUND_GAP, longer under load).
        self._gap = ROUND_GAP
        #: The live loop's claims (see `_claims_may_be_due`): something changed since the last; something else than
        #: webhooks was announced; when they last ran; the running campaigns in scope and when they were read.
        self._claims_due = True
        self._announced = True
        self._claims_checked = 0.0
        self._running: list[int] = []
        self._running_read = 0.0
        self._stats_lock = threading.Lock()

    # --- life ----------------------------------------------------------------------------------------------------

    def register(self) -> int:
        """Record this worker and start its heartbeat; returns its id."""
        self._membership = Membership(self.store, "worker", self._stop.set)
        self.worker_id = self.engine.worker_id = self._start_engine.worker_id = self._membership.id
        self._deliverer = start_for_worker(self.store, self.worker_id, self.clock)
        return self.worker_id

    def stop(self) -> None:
        """Ask the worker to stop after the round it is in (it starts what it has claimed, then exits)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        """True once asked to stop."""
        return self._stop.is_set()

    def run(self) -> WorkerStats:
        """Rounds until `stop()`: never exits because it is idle."""
        if not self.worker_id:
            self.register()
        waker = _Waker(self.store, self._stop)
        self._starter = threading.Thread(target=self._start_loop, name="herald-starter", daemon=True)
        self._starter.start()
        try:
            while not self._stop.is_set():
                began = time.monotonic()
                self._held_back = False
                busy = self.round()
                if not busy and not self._stop.is_set():
                    if not self._held_back and waker.wait(self.poll_seconds):
                        # events left for a call another worker was applying: soon, not at a NOTIFY
                        self._announced = True
                    self._stop.wait(began + self._gap - time.monotonic())
        finally:
            waker.close()
            self.close()
        if self._starter_error is not None:
            raise self._starter_error
        return self.stats

    def _start_loop(self) -> None:
        """The starter: start this worker's claims (and the pool's) whenever told there may be some, and every poll
        interval (retries come due, a dead worker's claims return to the pool); after `close()`, one last pass."""
        try:
            while True:
                self._to_start.clear()
                closing = self._closing.is_set()
                busy = self._guarded(self._start_claimed)
                if closing and not busy:
                    return
                if not busy:
                    self._to_start.wait(max(self.poll_seconds, STARTER_POLL))
        except BaseException as error:
            # What would have ended a round ends the worker, as it did when the round started the claims itself.
            log.exception("the starter failed; stopping")
            self._starter_error = error
            self._stop.set()

    def close(self) -> None:
        """Stop the heartbeat and mark this worker stopped (its pending starts go back to the pool)."""
        if self._starter is not None:
            # It starts what was claimed before it stops, as a round would; then nothing else takes this worker's claims.
            self._closing.set()
            self._to_start.set()
            self._starter.join()
            self._starter = None
        self.outbounds.close()
        if self._deliverer is not None:
            self._deliverer.stop()
            self._deliverer = None
        if self._membership is not None:
            with self.store.tx() as tx:
                claims.release_worker(tx, self.worker_id)
            self._membership.close()
            self._membership = None

    def finished(self) -> bool:
        """True when no campaign in scope is running and nothing waits in the inbox (for `herald run`)."""
        with self.store.read() as tx:
            running = [c.id for c in tx.campaigns(RUNNING) if self.campaign_ids is None or c.id in self.campaign_ids]
            return not running and inbox.next_available(tx) is None

    def round(self) -> bool:
        """One round of work; True if there may be more to do at once (a full batch was taken). With the starter
        running (`run()`), claims are handed to it instead of started here."""
        self.stats.rounds += 1
        busy = False
        if self._starter is not None:
            if self._guarded(self._recover):  # a dead worker's claims may be back in the pool
                self._to_start.set()
                busy = True
            busy = self._guarded(self._drain) or busy
            if self._claims_may_be_due() and self._guarded(lambda: self._campaigns(cached=True)):
                self._to_start.set()
                busy = True
            return busy
        for phase in (self._recover, self._drain, self._campaigns, self._start_claimed, self._drain):
            busy = self._guarded(phase) or busy
        return busy

    def _guarded(self, phase: Callable[[], bool]) -> bool:
        try:
            return phase()
        except (DBAPIError, Conflict) as error:
            # Another process won a race (a lock, a conditional write): nothing was written; try next round.
            with self._stats_lock:
                self.stats.errors += 1
            log.warning("%s: %s", getattr(phase, "__name__", phase), error)
            return False

    # --- 1. recovery ---------------------------------------------------------------------------------------------

    def _recover(self) -> bool:
        wall = RealClock().now()
        if self._next_recover is not None and wall < self._next_recover:
            return False
        self._next_recover = wall + RECOVER_EVERY
        now = self.clock.now()
        with self.store.tx() as tx:
            dead = claims.declare_dead(tx, wall - STALE_AFTER, wall, keep=self.worker_id)
            if not dead:
                return False
            for channel in ("call", "message"):
                orphans = claims.orphaned_starts(tx, channel, dead)
                resend = {row_id for row_id, _, _, campaign_id in orphans if self._idempotent(tx, campaign_id)}
                claims.release(tx, channel, sorted(resend))
                lost = [
                    (_bare_start(row_id, public_id, provider), "worker_lost", "the worker that claimed it stopped")
                    for row_id, public_id, provider, _ in orphans
                    if row_id not in resend
                ]
                self._fail_starts(tx, channel, lost, now)
                self.stats.recovered += len(orphans)
            log.info("took back the claims of dead worker(s) %s", dead)
        return True

    def _idempotent(self, tx: Tx, campaign_id: int) -> bool:
        """Whether the campaign's provider honours Herald's id as an idempotency key (a lost start is then re-sent)."""
        try:
            return self.outbounds.get(tx.campaign(campaign_id)).idempotent
        except (registry.UnknownProvider, registry.ProviderOptionsError, KeyError, ValueError):
            return False

    def _fail_starts(
        self,
        tx: Tx,
        channel: str,
        failures: Sequence[tuple[claims.Start, str, str]],
        now: datetime,
        engine: Engine | None = None,
    ) -> None:
        """Starts that will not happen, as (start, code, message): recorded as refused, then failed through the rules
        (the failed-retry limit decides what comes next). `engine`: the calling thread's (the main one's by default)."""
        if not failures:
            return
        engine = engine or self.engine
        external = claims.rejected(tx, channel, failures)
        engine._contexts.clear()
        events = [
            ProviderEvent(
                start.provider,
                external_id,
                "failed",
                now,
                data={"reason": code, "error_code": code, "error_msg": message},
                subject=channel,
            )
            for (start, code, message), external_id in zip(failures, external, strict=True)
        ]
        engine.ingest(tx, events, now)

    # --- 2. the inbox ----------------------------------------------------------------------------------------------

    def _drain(self) -> bool:
        now = self.clock.now()
        with self.store.tx() as tx:
            self.engine._contexts.clear()
            taken = inbox.take(tx, now, self.batch)
            if not taken:
                # Every worker is woken by each webhook's NOTIFY, and the first to drain takes all its events: the
                # others find none. A worker that keeps finding none lets more time pass between its rounds (up to
                # ROUND_GAP_MAX), so N workers do not each pay a round's queries per webhook; one that finds events
                # is back to the short gap at once. (A round after an idle wait is not delayed by this.)
                self._gap = min(ROUND_GAP_MAX, 2 * self._gap)
                self.stats.empty_drains += 1
                return False
            full = len(taken) >= self.batch
            self._gap = min(ROUND_GAP_MAX, max(ROUND_GAP, len(taken) * ROUND_GAP_PER_EVENT))
            # PostgreSQL: the calls are locked first, skipping those another worker is applying events of; their
            # events stay in the inbox, unchanged, for a later batch (they are one worker's at a time, in order).
            held = claims.lock_calls(
                tx, [i.event.attempt_id for i in taken if i.event.subject == "call" and i.event.attempt_id]
            )
            if held:
                taken = [item for item in taken if item.event.subject != "call" or item.event.attempt_id not in held]
                self._held_back = True
            for subject in ("call", "message"):
                by_provider: dict[str, list[tuple[str, str]]] = {}
                for item in taken:
                    event = item.event
                    if event.subject == subject and event.attempt_id:
                        external = event.ref or event.external_id
                        by_provider.setdefault(event.provider, []).append((event.attempt_id, external))
                for provider, pairs in by_provider.items():
                    claims.adopt(tx, provider, subject, pairs)
            unmatched = {id(event) for event in self.engine.apply(tx, [item.event for item in taken], now)}
            applied = [item.id for item in taken if id(item.event) not in unmatched]
            waiting = [
                (item.id, item.tries, "no call or message with this id yet")
                for item in taken
                if id(item.event) in unmatched
            ]
            inbox.mark_applied(tx, applied, now)
            inbox.postpone(tx, waiting, now)
        self.stats.events_applied += len(applied)
        self.stats.events_postponed += len(waiting)
        if applied:
            self._claims_due = True  # calls may have ended: room under the limits
        return full

    # --- 3. campaigns: cycles, timeouts, claims --------------------------------------------------------------------

    def _campaigns(self, *, cached: bool = False) -> bool:
        """Claims for every running campaign in scope. With `cached` (the live loop), the list of running campaigns
        is read again only when something else than webhooks was announced or it is older than the poll interval:
        a campaign that stopped running meanwhile is seen as such under its lock."""
        now = self.clock.now()
        check_leases = self._next_lease_check is None or now >= self._next_lease_check
        if check_leases:
            self._next_lease_check = now + LEASE_CHECK_EVERY
        self._claims_due = False
        self._claims_checked = time.monotonic()
        try:
            if (
                not cached
                or self._announced
                or self._claims_checked >= self._running_read + _recheck(self.poll_seconds)
            ):
                self._announced = False
                self._running_read = self._claims_checked
                with self.store.read() as tx:
                    self._running = [
                        c.id for c in tx.campaigns(RUNNING) if self.campaign_ids is None or c.id in self.campaign_ids
                    ]
            busy = False
            for campaign_id in self._running:
                busy = self._campaign(campaign_id, check_leases) or busy
        except BaseException:
            self._claims_due = True
            raise
        return busy

    def _claims_may_be_due(self) -> bool:
        """The live loop's test before a round's claims: whether anything may have changed since its last claims.
        Room under a limit opens when events are applied (this worker's drain, or another's, which then claims
        itself), a campaign's lock was held by another worker, claims were made (there may be more), something
        else than webhooks was announced (an activation, an import); and on the clock (retries, cycles, leases,
        the rooms a starter's refusals open), which the poll interval covers."""
        recheck = _recheck(self.poll_seconds)
        return self._claims_due or self._announced or time.monotonic() >= self._claims_checked + recheck

    def _campaign(self, campaign_id: int, check_leases: bool) -> bool:
        engine = self.engine
        claimed_before = engine.stats.attempts
        with self.store.tx() as tx:
            campaign = claims.lock_free_campaign(tx, campaign_id)
            if campaign is None:
                # Another worker (or a user's action) holds it: that worker is claiming for it now, and waiting
                # behind it would only queue every worker on one row; the next round looks again.
                self._claims_due = True
                self.stats.campaigns_held += 1
                return False
            # Read once the lock is held: what this claims is stamped after every release it has seen.
            now = self.clock.now()
            if campaign.status not in RUNNING:
                return False
            engine._contexts.clear()
            if not self._provider_ready(tx, campaign, now):
                return False
            if check_leases:
                engine._expire_leases(tx, campaign_id, now)
            context = engine._start_cycle_if_due(tx, engine._refresh(campaign), now)
            if context.campaign.status is CampaignStatus.ACTIVE:
                if campaign.channel is Channel.WHATSAPP:
                    engine._response_timeouts(tx, context, now)
                engine._dispatch(tx, context, now)
        claimed = engine.stats.attempts - claimed_before
        self.stats.claimed += claimed
        if claimed:
            self._claims_due = True
        return claimed > 0

    def _provider_ready(self, tx: Tx, campaign: Campaign, now: datetime) -> bool:
        """True when the campaign's provider can be built; otherwise the campaign is paused with the reason logged,
        so one broken campaign never blocks the others."""
        try:
            self.outbounds.get(campaign)
            return True
        except (registry.UnknownProvider, registry.ProviderOptionsError, KeyError, ValueError) as error:
            reason = str(error)
        tx.log(campaign.id, "campaign.provider_error", {"error": reason}, now)
        change_status(tx, campaign, CampaignStatus.INACTIVE, now)
        self.stats.campaigns_paused.append(campaign.id)
        log.error("campaign %s paused: %s", campaign.id, reason)
        return False

    # --- 4. starts, outside any transaction ----------------------------------------------------------------------

    def _start_claimed(self) -> bool:
        busy = False
        now = self.clock.now()
        taken: list[tuple[str, list[claims.Start], dict[int, Campaign]]] = []
        # Both channels in one transaction: one commit per pass.
        with self.store.tx() as tx:
            for channel in ("call", "message"):
                starts = claims.take_starts(tx, channel, self.worker_id, now, self.batch)
                campaigns = {cid: tx.campaign(cid) for cid in {start.campaign_id for start in starts}}
                if channel == "message":  # tracked links: tokens commit with the take, before the provider call
                    starts = links.track_starts(tx, campaigns, starts, now, public_url())
                if starts:
                    taken.append((channel, starts, campaigns))
        for channel, starts, campaigns in taken:
            busy = busy or len(starts) >= self.batch
            by_campaign: dict[int, list[claims.Start]] = {}
            for start in starts:
                by_campaign.setdefault(start.campaign_id, []).append(start)
            for campaign_id, group in by_campaign.items():
                self._start_group(channel, campaigns[campaign_id], group)
        return busy

    def _start_group(self, channel: str, campaign: Campaign, starts: Sequence[claims.Start]) -> None:
        now = self.clock.now()
        try:
            outbound = self.outbounds.get(campaign)
        except (registry.UnknownProvider, registry.ProviderOptionsError, KeyError, ValueError) as error:
            failed = [StartResult.retryable("provider_unavailable", str(error)) for _ in starts]
            self._record(channel, None, starts, failed, now)
            return
        # getattr: test doubles and older adapters may not declare a rate at all.
        throughput: Throughput | None = getattr(outbound, "throughput", None)
        if throughput is None:
            self._record(channel, outbound, starts, _call(outbound, channel, campaign, starts, now), now)
            return
        # Each paced group is recorded as soon as it is made, not after the whole reservation (up to PACE_HORIZON
        # later): a webhook about a start (a reply found by the provider's id) can match it sooner.
        for group, results in self._paced(outbound, throughput, channel, campaign, starts):
            self._record(channel, outbound, group, results, self.clock.now())

    def _record(
        self,
        channel: str,
        outbound: Outbound | None,
        starts: Sequence[claims.Start],
        results: Sequence[StartResult],
        now: datetime,
    ) -> None:
        """Record the providers' answers to starts: started, back to the pool for a retry, or refused and failed."""
        # A live simulator hands over its attempts' future events; a real provider's come as webhooks.
        scheduled: list[ProviderEvent] = outbound.scheduled(now) if isinstance(outbound, SchedulesEvents) else []
        ok = [(start.id, result.external_id or "") for start, result in zip(starts, results, strict=True) if result.ok]
        retry = [
            (start, result.error_code, result.error_msg)
            for start, result in zip(starts, results, strict=True)
            if not result.ok and result.error is not StartError.REJECTED
        ]
        refused = [
            (start, result.error_code or "rejected", result.error_msg)
            for start, result in zip(starts, results, strict=True)
            if result.error is StartError.REJECTED
        ]
        with self.store.tx() as tx:
            held = claims.started(tx, channel, ok, wait=False)
            claims.retry_later(tx, channel, retry, now)
            if scheduled:
                inbox.add(tx, scheduled, now, scheduled=True)
            starter = threading.current_thread() is self._starter
            self._fail_starts(tx, channel, refused, now, self._start_engine if starter else None)
        if held:
            # Calls whose first events a worker was applying meanwhile: waited for now, with nothing else held.
            with self.store.tx() as tx:
                claims.started(tx, channel, held)
        self.stats.started += len(ok)
        self.stats.start_retries += len(retry)
        self.stats.start_rejected += len(refused)
        if refused:
            self._claims_due = True  # their contacts are free again

    def _paced(
        self,
        outbound: Outbound,
        throughput: Throughput,
        channel: str,
        campaign: Campaign,
        starts: Sequence[claims.Start],
    ) -> Iterator[tuple[list[claims.Start], list[StartResult]]]:
        """Starts within the provider's rate, shared with every worker through the database: slots opening within
        `PACE_HORIZON` are reserved and the starts made at their times; the others go back to the pool for whichever
        worker gets the next slots. Yields each group of starts made at one time, with their results."""
        with self.store.tx() as tx:
            wall = time.time()
            reservation = throttle.reserve(tx, throughput, len(starts), wall, PACE_HORIZON)
            taken, rest = list(starts[: len(reservation.go)]), starts[len(reservation.go) :]
            back_at = self.clock.now() + timedelta(seconds=max(0.0, reservation.retry_at - wall))
            claims.hand_back(tx, channel, rest, back_at)
        index = 0
        while index < len(taken):
            # Never inside a transaction, and at most the horizon: the slot is this worker's alone.
            delay = reservation.go[index] - time.time()
            if delay > 0:
                time.sleep(delay)
            wall = time.time()
            end = index + 1
            while end < len(taken) and reservation.go[end] <= wall:
                end += 1
            group = taken[index:end]
            yield group, _call(outbound, channel, campaign, group, self.clock.now())
            index = end


def _recheck(poll_seconds: float) -> float:
    """How long the live loop goes at most without looking for claims (and reading the running campaigns)."""
    return min(poll_seconds, 1.0)


def _bare_start(row_id: int, public_id: str, provider: str) -> claims.Start:
    return claims.Start(row_id, public_id, 0, 0, provider, False, "", 0, "", "", "", {})


def _call(
    outbound: Outbound, channel: str, campaign: Campaign, starts: Sequence[claims.Start], now: datetime
) -> list[StartResult]:
    config = campaign.config
    try:
        if channel == "call":
            return outbound.start_calls(
                [
                    CallRequest(
                        public_id=start.public_id,
                        campaign_id=campaign.id,
                        contact_id=start.contact_id,
                        to=start.to,
                        name=start.name,
                        context=start.context,
                        first_message=first_message(config, start.name),
                        follow_up=start.follow_up,
                        config=config,
                        variables=start.variables,
                    )
                    for start in starts
                ],
                now,
            )
        return outbound.send_messages(
            [
                MessageRequest(
                    message_id=start.id,
                    campaign_id=campaign.id,
                    contact_id=start.contact_id,
                    to=start.to,
                    template=start.template,
                    config=config,
                    variables={"name": start.name, **start.variables},
                    context=start.context,
                )
                for start in starts
            ],
            now,
        )
    except Exception as error:  # an adapter bug must not lose the claims: they are retried later
        log.exception("provider %s raised", config.provider)
        return [StartResult.retryable("adapter_error", f"{type(error).__name__}: {error}"[:500]) for _ in starts]


def describe(stats: WorkerStats) -> dict[str, Any]:
    """The worker's figures as JSON-ready values."""
    return asdict(stats)
