"""Prometheus metrics of a Herald installation: the database's figures, read when scraped, and this process's requests.

Database figures are the same whichever `herald serve` process answers a scrape: they are read at scrape time by
aggregate queries that an index answers (partial indexes on due contacts, attempts in flight, starts waiting, pending
inbox events and pending deliveries; primary keys for the totals; `campaign_id` indexes for the per-status counts,
which are limited to campaigns that are not finished). Nothing is counted in memory for them, so several processes
never disagree and a restart loses nothing.

Request latency is per process: each `herald serve` process keeps its own histogram, labelled with its `pid`, so that
the series stay monotonic whichever process a scrape reaches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select, text

from herald.store import schema as t
from herald.store.queries import Store, Tx

_k = t.calls.c
_m = t.messages.c
_c = t.contacts.c
_e = t.events.c
_d = t.webhook_deliveries.c
_camp = t.campaigns.c

#: Seconds buckets of the request latency histogram (webhooks answer in milliseconds; exports may take seconds).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# The derived status of a WhatsApp message (messages have no status column): the furthest receipt it has.
_MESSAGE_STATUS = case(
    (_m.error_code != "", "failed"),
    (_m.read_at.is_not(None), "read"),
    (_m.delivered_at.is_not(None), "delivered"),
    (_m.sent_at.is_not(None), "sent"),
    else_="queued",
)


@dataclass
class Figures:
    """What the database says at one instant (see `read_figures`)."""

    campaigns: dict[str, int] = field(default_factory=dict)
    #: (campaign id, business public id) of each campaign not finished.
    live: dict[int, str] = field(default_factory=dict)
    calls: dict[tuple[int, str], int] = field(default_factory=dict)
    messages: dict[tuple[int, str], int] = field(default_factory=dict)
    due: dict[int, int] = field(default_factory=dict)
    in_flight: dict[int, int] = field(default_factory=dict)
    starts_waiting: dict[str, int] = field(default_factory=dict)
    events_stored: int = 0
    pending_events: dict[str, int] = field(default_factory=dict)
    oldest_pending_event_seconds: float = 0.0
    deliveries_created: int = 0
    delivery_attempts: int = 0
    deliveries_pending: int = 0
    deliveries_retrying: int = 0
    oldest_pending_delivery_seconds: float = 0.0
    workers: dict[str, int] = field(default_factory=dict)


def _age(now: datetime, then: datetime | None) -> float:
    return 0.0 if then is None else max(0.0, (now - then).total_seconds())


def read_figures(tx: Tx, now: datetime, stale_before: datetime) -> Figures:
    """The database's figures in one read snapshot; `stale_before`: workers beating before it are not alive."""
    run = tx.connection.execute
    figures = Figures()
    figures.campaigns = {
        status: count for status, count in run(select(_camp.status, func.count()).group_by(_camp.status))
    }
    live = (
        select(_camp.id, t.businesses.c.public_id)
        .join(t.businesses, t.businesses.c.id == _camp.business_id)
        .where(_camp.status != "finished")
    )
    figures.live = {campaign_id: business for campaign_id, business in run(live)}
    live_ids = select(_camp.id).where(_camp.status != "finished").scalar_subquery()
    figures.calls = {
        (cid, status): count
        for cid, status, count in run(
            select(_k.campaign_id, _k.status, func.count())
            .where(_k.campaign_id.in_(live_ids))
            .group_by(_k.campaign_id, _k.status)
        )
    }
    message_status = _MESSAGE_STATUS.label("status")
    figures.messages = {
        (cid, status): count
        for cid, status, count in run(
            select(_m.campaign_id, message_status, func.count())
            .where(_m.campaign_id.in_(live_ids))
            .group_by(_m.campaign_id, message_status)
        )
    }
    # The partial index ix_contacts_campaign_due (due_at IS NOT NULL) answers this.
    due = (
        select(_c.campaign_id, func.count())
        .where(_c.due_at.is_not(None), _c.due_at <= now, _c.inflight_id.is_(None))
        .group_by(_c.campaign_id)
    )
    figures.due = {cid: count for cid, count in run(due)}
    in_flight = select(_c.campaign_id, func.count()).where(_c.inflight_id.is_not(None)).group_by(_c.campaign_id)
    figures.in_flight = {cid: count for cid, count in run(in_flight)}
    figures.starts_waiting = {
        "call": run(select(func.count()).where(_k.start_after.is_not(None))).scalar_one(),
        "message": run(select(func.count()).where(_m.start_after.is_not(None))).scalar_one(),
    }
    figures.events_stored = run(select(func.coalesce(func.max(_e.id), 0))).scalar_one()
    pending = (
        select(_e.provider, func.count(), func.min(_e.received_at)).where(_e.applied_at.is_(None)).group_by(_e.provider)
    )
    oldest: datetime | None = None
    for provider, count, received in run(pending):
        figures.pending_events[provider] = count
        oldest = received if oldest is None or received < oldest else oldest
    figures.oldest_pending_event_seconds = _age(now, oldest)
    figures.deliveries_created = run(select(func.coalesce(func.max(_d.id), 0))).scalar_one()
    figures.delivery_attempts = run(select(func.coalesce(func.max(t.webhook_attempts.c.id), 0))).scalar_one()
    # A literal (not a bound parameter), so SQLite sees the partial index's own condition and uses it.
    pending_status = text("webhook_deliveries.status = 'pending'")
    count, retrying, created = run(
        select(func.count(), func.coalesce(func.sum(case((_d.attempts > 0, 1), else_=0)), 0), func.min(_d.created_at))
        .select_from(t.webhook_deliveries)
        .where(pending_status)
    ).one()
    figures.deliveries_pending, figures.deliveries_retrying = count, retrying
    figures.oldest_pending_delivery_seconds = _age(now, created)
    w = t.workers.c
    alive = select(w.kind, func.count()).where(w.stopped_at.is_(None), w.heartbeat_at >= stale_before).group_by(w.kind)
    figures.workers = {kind: count for kind, count in run(alive)}
    return figures


def _gauge(name: str, help_text: str, labels: list[str], rows: Iterator[tuple[list[str], float]]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, help_text, labels=labels)
    for values, value in rows:
        family.add_metric(values, value)
    return family


def families(figures: Figures) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
    """The metric families of `figures`."""
    from herald.domain.statuses import CampaignStatus

    live = figures.live
    yield _gauge(
        "herald_campaigns",
        "Campaigns by status.",
        ["status"],
        (([s.value], figures.campaigns.get(s.value, 0)) for s in CampaignStatus),
    )
    yield _gauge(
        "herald_calls",
        "Calls (attempts) of each campaign not finished, by call status.",
        ["campaign", "business", "status"],
        (([str(cid), live.get(cid, ""), status], n) for (cid, status), n in sorted(figures.calls.items())),
    )
    yield _gauge(
        "herald_messages",
        "WhatsApp messages (attempts) of each campaign not finished, by furthest receipt (queued, sent, delivered, "
        "read) or failed.",
        ["campaign", "business", "status"],
        (([str(cid), live.get(cid, ""), status], n) for (cid, status), n in sorted(figures.messages.items())),
    )
    yield _gauge(
        "herald_queue_due_contacts",
        "Contacts due for an attempt now and not in flight (the queue a worker takes from), per campaign not finished.",
        ["campaign", "business"],
        (([str(cid), business], figures.due.get(cid, 0)) for cid, business in sorted(live.items())),
    )
    yield _gauge(
        "herald_in_flight_contacts",
        "Contacts with an attempt in flight, per campaign not finished.",
        ["campaign", "business"],
        (([str(cid), business], figures.in_flight.get(cid, 0)) for cid, business in sorted(live.items())),
    )
    yield _gauge(
        "herald_starts_waiting",
        "Claimed attempts not yet placed at their provider (new, or waiting to retry after a 429/5xx/timeout).",
        ["channel"],
        (([channel], n) for channel, n in sorted(figures.starts_waiting.items())),
    )
    events = CounterMetricFamily(
        "herald_events_stored",
        "Provider and timer events stored in the inbox since the database was created (the highest event id: on "
        "PostgreSQL an id taken by an insert that rolled back or was a duplicate is skipped, so it may run ahead).",
    )
    events.add_metric([], figures.events_stored)
    yield events
    yield _gauge(
        "herald_inbox_pending_events",
        "Events stored but not applied yet, by provider.",
        ["provider"],
        (([provider], n) for provider, n in sorted(figures.pending_events.items())),
    )
    yield GaugeMetricFamily(
        "herald_inbox_oldest_pending_seconds",
        "Age of the oldest event waiting to be applied (0 when none waits).",
        value=figures.oldest_pending_event_seconds,
    )
    created = CounterMetricFamily(
        "herald_webhook_deliveries_created", "Outgoing webhook deliveries created (the highest delivery id)."
    )
    created.add_metric([], figures.deliveries_created)
    yield created
    attempts = CounterMetricFamily(
        "herald_webhook_delivery_attempts", "Outgoing webhook delivery attempts made (the highest attempt id)."
    )
    attempts.add_metric([], figures.delivery_attempts)
    yield attempts
    yield GaugeMetricFamily(
        "herald_webhook_deliveries_pending", "Outgoing webhook deliveries not yet delivered or given up.",
        value=figures.deliveries_pending,
    )  # fmt: skip
    yield GaugeMetricFamily(
        "herald_webhook_deliveries_failing",
        "Pending outgoing webhook deliveries whose attempts so far have all failed (waiting to retry).",
        value=figures.deliveries_retrying,
    )
    yield GaugeMetricFamily(
        "herald_webhook_deliveries_oldest_pending_seconds",
        "Age of the oldest pending outgoing webhook delivery (0 when none is pending).",
        value=figures.oldest_pending_delivery_seconds,
    )
    yield _gauge(
        "herald_workers_alive",
        "Processes claiming work whose heartbeat is recent, by kind (worker: `herald worker`, run: `herald run`).",
        ["kind"],
        (([kind], n) for kind, n in sorted(figures.workers.items())),
    )


class DatabaseCollector(Collector):
    """Reads `Figures` at each scrape; `herald_database_up` is 0 (and nothing else is reported) when it cannot."""

    def __init__(self, store: Store, clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.clock = clock or (lambda: datetime.now(UTC))

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        from herald.engine.worker import STALE_AFTER

        now = self.clock()
        try:
            with self.store.read() as tx:
                figures = read_figures(tx, now, now - STALE_AFTER)
        except Exception:  # a scrape must answer, whatever the database says
            yield GaugeMetricFamily("herald_database_up", "1 when the database answered this scrape.", value=0)
            return
        yield GaugeMetricFamily("herald_database_up", "1 when the database answered this scrape.", value=1)
        yield from families(figures)


@dataclass
class ProcessMetrics:
    """The metrics of one `herald serve` process: its registry, the database collector and request latency."""

    registry: CollectorRegistry
    latency: Histogram

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one answered request."""
        self.latency.labels(method, route, f"{status // 100}xx", str(os.getpid())).observe(seconds)


def process_metrics(store: Store) -> ProcessMetrics:
    """A registry with the database collector and this process's request histogram (its own, not the global one, so
    that several applications in one process, as in tests, do not collide)."""
    # `_created` series (when each series began) only double the output: Prometheus does not need them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector(store))
    latency = Histogram(
        "herald_http_request_duration_seconds",
        "Time to answer HTTP requests, per route template and status class; per process (label pid).",
        ["method", "route", "status_class", "pid"],
        buckets=LATENCY_BUCKETS,
        registry=registry,
    )
    return ProcessMetrics(registry, latency)
