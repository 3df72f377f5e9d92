"""The outbox tables: webhook endpoints, deliveries (one per event per endpoint) and their attempts.

Claims follow `store/claims.py`: a claim is a committed row change made before anything is sent. Here the claim
sets `worker_id` and pushes `next_attempt_at` one lease ahead, so a delivery whose worker died while sending is due
again when the lease ends, and taken by whoever comes first (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: the
write transaction). An attempt is recorded only by the claim that made it (same worker, same attempt count), so a
late answer never overwrites a newer attempt's outcome.
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit
from weakref import WeakKeyDictionary

from sqlalchemy import and_, func, insert, select, update

from herald.outbox.payloads import EVENT_TYPES, STATUS_CHANGED
from herald.outbox.schedule import Transition
from herald.outbox.signing import secret_key
from herald.store import schema as t
from herald.store.queries import Tx

#: How long a claim keeps a delivery from other workers: far more than one 5 s attempt takes.
LEASE = timedelta(seconds=60)
_ALPHABET = string.ascii_letters + string.digits
_e = t.webhook_endpoints.c
_d = t.webhook_deliveries.c
_a = t.webhook_attempts.c


class EndpointError(ValueError):
    """An endpoint that cannot be added (bad URL, secret, events or filters)."""


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a business wants its webhooks, and which."""

    id: int
    public_id: str
    business_id: int
    url: str
    secret: str
    events: tuple[str, ...]
    filters: dict[str, Any]
    created_at: datetime
    disabled_at: datetime | None


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        id=row.id,
        public_id=row.public_id,
        business_id=row.business_id,
        url=row.url,
        secret=row.secret,
        events=tuple(row.events or ()),
        filters=dict(row.filters or {}),
        created_at=row.created_at,
        disabled_at=row.disabled_at,
    )


def check_endpoint(url: str, secret: str, events: Sequence[str], statuses: Sequence[str] = ()) -> None:
    """Raise EndpointError with a clear message for anything an endpoint must not be."""
    from herald.domain.statuses import CampaignStatus

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise EndpointError(f"the URL must be http:// or https:// with a host, not {url!r}")
    try:
        secret_key(secret)
    except ValueError as error:
        raise EndpointError(str(error)) from None
    if not events:
        raise EndpointError(f"name at least one event: {', '.join(EVENT_TYPES)}")
    unknown = [event for event in events if event not in EVENT_TYPES]
    if unknown:
        raise EndpointError(f"unknown event(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}")
    known_statuses = {status.value for status in CampaignStatus}
    bad = [status for status in statuses if status not in known_statuses]
    if bad:
        raise EndpointError(f"unknown status(es) {', '.join(bad)}; known: {', '.join(sorted(known_statuses))}")
    if statuses and STATUS_CHANGED not in events:
        raise EndpointError(f"a status filter applies to {STATUS_CHANGED}, which this endpoint does not receive")


def add_endpoint(
    tx: Tx, business_id: int, url: str, secret: str, events: Sequence[str], statuses: Sequence[str], now: datetime
) -> Endpoint:
    """A new endpoint of a business (checked first: EndpointError)."""
    check_endpoint(url, secret, events, statuses)
    public_id = "whk_" + "".join(secrets.choice(_ALPHABET) for _ in range(20))
    filters = {"status": list(dict.fromkeys(statuses))} if statuses else {}
    tx.connection.execute(
        insert(t.webhook_endpoints).values(
            public_id=public_id,
            business_id=business_id,
            url=url,
            secret=secret.strip(),
            events=list(dict.fromkeys(events)),
            filters=filters,
            created_at=now,
        )
    )
    row = tx.connection.execute(select(t.webhook_endpoints).where(_e.public_id == public_id)).one()
    return _endpoint(row)


def list_endpoints(tx: Tx, business_id: int | None = None) -> list[Endpoint]:
    """Endpoints not removed, oldest first (of one business, or of all)."""
    query = select(t.webhook_endpoints).where(_e.disabled_at.is_(None))
    if business_id is not None:
        query = query.where(_e.business_id == business_id)
    return [_endpoint(row) for row in tx.connection.execute(query.order_by(_e.id))]


def remove_endpoint(tx: Tx, public_id: str, now: datetime) -> int | None:
    """Disable an endpoint (its history stays) and cancel what it has not been sent yet; returns how many
    deliveries were cancelled, or None when there is no such endpoint."""
    row = tx.connection.execute(select(_e.id).where(_e.public_id == public_id, _e.disabled_at.is_(None))).first()
    if row is None:
        return None
    tx.connection.execute(update(t.webhook_endpoints).where(_e.id == row.id).values(disabled_at=now))
    result = tx.connection.execute(
        update(t.webhook_deliveries)
        .where(_d.endpoint_id == row.id, _d.status == "pending")
        .values(status="cancelled", next_attempt_at=None, worker_id=None)
    )
    return int(result.rowcount)


# --- enqueue (inside the transaction that makes the event) ----------------------------------------------------------

# Per transaction, each business's endpoints: the engine's hooks run for every status change and call end, and one
# indexed lookup per business per transaction is all they may cost (nothing more when a business has none).
_CACHE: WeakKeyDictionary[Tx, dict[int, tuple[Endpoint, ...]]] = WeakKeyDictionary()


def endpoints_of(tx: Tx, business_id: int) -> tuple[Endpoint, ...]:
    """The active endpoints of a business, read once per transaction."""
    cached = _CACHE.get(tx)
    if cached is None:
        cached = _CACHE[tx] = {}
    found = cached.get(business_id)
    if found is None:
        query = select(t.webhook_endpoints).where(_e.business_id == business_id, _e.disabled_at.is_(None))
        found = cached[business_id] = tuple(_endpoint(row) for row in tx.connection.execute(query.order_by(_e.id)))
    return found


def enqueue(tx: Tx, rows: Sequence[tuple[Endpoint, str, str, str]], now: datetime) -> None:
    """Deliveries to make, as (endpoint, event id, event type, body), due at once."""
    if not rows:
        return
    tx.connection.execute(
        insert(t.webhook_deliveries),
        [
            {
                "event_id": evt,
                "endpoint_id": endpoint.id,
                "event_type": kind,
                "body": body,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for endpoint, evt, kind, body in rows
        ],
    )


# --- claim and record (the delivery loop) ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Claimed:
    """A delivery this worker is to attempt now."""

    id: int
    event_id: str
    event_type: str
    body: str
    attempts: int
    url: str
    secret: str


def next_due(tx: Tx) -> datetime | None:
    """When the earliest pending delivery is due (a claimed one: when its lease ends)."""
    value = tx.connection.execute(select(func.min(_d.next_attempt_at)).where(_d.status == "pending")).scalar()
    return value if isinstance(value, datetime) else None


def claim(tx: Tx, worker_id: int, now: datetime, limit: int, lease: timedelta = LEASE) -> list[Claimed]:
    """Take up to `limit` due deliveries for this worker (oldest due first), leased until `now + lease`."""
    if limit <= 0:
        return []
    query = (
        select(_d.id, _d.event_id, _d.event_type, _d.body, _d.attempts, _e.url, _e.secret)
        .join(t.webhook_endpoints, _e.id == _d.endpoint_id)
        .where(_d.status == "pending", _d.next_attempt_at <= now)
        .order_by(_d.next_attempt_at, _d.id)
        .limit(limit)
    )
    if tx.locks_rows:
        query = query.with_for_update(of=t.webhook_deliveries, skip_locked=True)
    rows = tx.connection.execute(query).all()
    if not rows:
        return []
    tx.connection.execute(
        update(t.webhook_deliveries)
        .where(_d.id.in_([row.id for row in rows]))
        .values(worker_id=worker_id, next_attempt_at=now + lease)
    )
    return [Claimed(row.id, row.event_id, row.event_type, row.body, row.attempts, row.url, row.secret) for row in rows]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One POST and what came of it."""

    attempted_at: datetime
    status_code: int | None
    error: str
    duration_ms: int


def record(tx: Tx, worker_id: int, claimed: Claimed, attempt: Attempt, after: Transition) -> bool:
    """Store an attempt and the delivery's new state; False (state untouched) when this claim was lost meanwhile
    (its lease ran out and another worker took the delivery). The attempt row is kept either way: it happened."""
    tx.connection.execute(
        insert(t.webhook_attempts).values(
            delivery_id=claimed.id,
            attempted_at=attempt.attempted_at,
            status_code=attempt.status_code,
            error=attempt.error[:2000],
            duration_ms=attempt.duration_ms,
        )
    )
    result = tx.connection.execute(
        update(t.webhook_deliveries)
        .where(
            and_(
                _d.id == claimed.id,
                _d.status == "pending",
                _d.worker_id == worker_id,
                _d.attempts == claimed.attempts,
            )
        )
        .values(
            status=after.status,
            attempts=after.attempts,
            next_attempt_at=after.next_attempt_at,
            worker_id=None,
            delivered_at=attempt.attempted_at if after.status == "delivered" else None,
        )
    )
    return result.rowcount == 1


def release(tx: Tx, worker_id: int, ids: Sequence[int], now: datetime) -> None:
    """Give claimed deliveries not attempted back to the pool, due at once (a worker stopping cleanly)."""
    if ids:
        tx.connection.execute(
            update(t.webhook_deliveries)
            .where(_d.id.in_(list(ids)), _d.worker_id == worker_id, _d.status == "pending")
            .values(worker_id=None, next_attempt_at=now)
        )


# --- listing ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    """A delivery as `herald webhooks deliveries` shows it, with every attempt."""

    id: int
    event_id: str
    event_type: str
    endpoint: str
    url: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    created_at: datetime
    delivered_at: datetime | None
    tries: list[dict[str, Any]]


def deliveries(tx: Tx, status: str | None = None, limit: int | None = 50) -> tuple[int, list[DeliveryRow]]:
    """How many deliveries there are (in `status`), and the newest `limit` of them with their attempts."""
    condition = _d.status == status if status else _d.id.is_not(None)
    total = int(
        tx.connection.execute(select(func.count()).select_from(t.webhook_deliveries).where(condition)).scalar_one()
    )
    query = (
        select(
            _d.id,
            _d.event_id,
            _d.event_type,
            _e.public_id,
            _e.url,
            _d.status,
            _d.attempts,
            _d.next_attempt_at,
            _d.created_at,
            _d.delivered_at,
        )
        .join(t.webhook_endpoints, _e.id == _d.endpoint_id)
        .where(condition)
        .order_by(_d.id.desc())
    )
    if limit:
        query = query.limit(limit)
    rows = tx.connection.execute(query).all()
    tries: dict[int, list[dict[str, Any]]] = {row.id: [] for row in rows}
    if rows:
        for attempt in tx.connection.execute(
            select(_a.delivery_id, _a.attempted_at, _a.status_code, _a.error, _a.duration_ms)
            .where(_a.delivery_id.in_(list(tries)))
            .order_by(_a.id)
        ):
            tries[attempt.delivery_id].append(
                {
                    "attempted_at": attempt.attempted_at,
                    "status_code": attempt.status_code,
                    "error": attempt.error,
                    "duration_ms": attempt.duration_ms,
                }
            )
    return total, [
        DeliveryRow(
            id=row.id,
            event_id=row.event_id,
            event_type=row.event_type,
            endpoint=row.public_id,
            url=row.url,
            status=row.status,
            attempts=row.attempts,
            next_attempt_at=row.next_attempt_at,
            created_at=row.created_at,
            delivered_at=row.delivered_at,
            tries=tries[row.id],
        )
        for row in rows
    ]
