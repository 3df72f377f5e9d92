"""Workers and the attempts they start: heartbeats, claimed starts, and taking back the claims of a dead worker.

A call or message row is the claim of its attempt: it commits (with `start_after` set and the claiming worker's id)
before any provider is called. A worker then takes its starts, calls the provider outside any transaction, and
records the answer. A start that got a retryable error goes back to the pool with a later `start_after`; a worker
that stops beating loses its starts to the others (re-sent with the same idempotency key where the provider honours
one, failed as `worker_lost` otherwise).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, any_, bindparam, insert, or_, select, update
from sqlalchemy.dialects import postgresql

from herald.domain.statuses import CallStatus
from herald.providers.base import PENDING_PREFIX
from herald.store import pg_batch
from herald.store import schema as t
from herald.store.campaigns import CAMPAIGN_SELECT, campaign_from_row
from herald.store.queries import Tx
from herald.store.records import Campaign

_w = t.workers.c
_k = t.calls.c
_m = t.messages.c
_c = t.contacts.c


def register(tx: Tx, kind: str, now: datetime) -> int:
    """A new worker row for this process; returns its id."""
    result = tx.connection.execute(
        insert(t.workers)
        .values(kind=kind, host=socket.gethostname(), pid=os.getpid(), started_at=now, heartbeat_at=now)
        .returning(_w.id)
    )
    return int(result.scalar_one())


def heartbeat(tx: Tx, worker_id: int, now: datetime) -> bool:
    """Say this worker is alive; False if it was declared dead meanwhile (its claims were taken back)."""
    result = tx.connection.execute(
        update(t.workers).where(_w.id == worker_id, _w.stopped_at.is_(None)).values(heartbeat_at=now)
    )
    return result.rowcount == 1


def stop(tx: Tx, worker_id: int, now: datetime, reason: str) -> None:
    """This worker stopped cleanly."""
    tx.connection.execute(
        update(t.workers).where(_w.id == worker_id, _w.stopped_at.is_(None)).values(stopped_at=now, stop_reason=reason)
    )


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """A worker as stored."""

    id: int
    kind: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_at: datetime


def alive(tx: Tx, since: datetime) -> list[WorkerRow]:
    """Workers not stopped whose last heartbeat is at or after `since`."""
    query = select(_w.id, _w.kind, _w.host, _w.pid, _w.started_at, _w.heartbeat_at).where(
        _w.stopped_at.is_(None), _w.heartbeat_at >= since
    )
    return [WorkerRow(*row) for row in tx.connection.execute(query.order_by(_w.id))]


def declare_dead(tx: Tx, before: datetime, now: datetime, keep: int = 0) -> list[int]:
    """Mark stopped every worker (but `keep`, the caller) whose heartbeat is older than `before`; returns their ids
    (each id once, to whichever process marked it)."""
    stale = [
        row[0]
        for row in tx.connection.execute(
            select(_w.id).where(_w.stopped_at.is_(None), _w.heartbeat_at < before, _w.id != keep).order_by(_w.id)
        )
    ]
    dead: list[int] = []
    for worker_id in stale:
        result = tx.connection.execute(
            update(t.workers)
            .where(_w.id == worker_id, _w.stopped_at.is_(None), _w.heartbeat_at < before)
            .values(stopped_at=now, stop_reason="heartbeat_lost")
        )
        if result.rowcount == 1:
            dead.append(worker_id)
    return dead


_FREE_CAMPAIGN = CAMPAIGN_SELECT.where(t.campaigns.c.id == bindparam("cid")).with_for_update(
    of=t.campaigns, skip_locked=True
)


def lock_free_campaign(tx: Tx, campaign_id: int) -> Campaign | None:
    """The campaign, locked until the transaction ends (`Tx.lock_campaign`), unless another transaction holds it: on
    PostgreSQL `FOR UPDATE SKIP LOCKED`, None when it is held (or gone); on SQLite, where the write transaction is
    the lock, always the campaign."""
    if not tx.locks_rows:
        return tx.lock_campaign(campaign_id)
    row = tx.connection.execute(_FREE_CAMPAIGN, {"cid": campaign_id}).first()
    return None if row is None else campaign_from_row(row)


@dataclass(frozen=True, slots=True)
class Start:
    """A claimed attempt to start at its provider: a call (public id) or a message (row id)."""

    id: int
    public_id: str
    campaign_id: int
    contact_id: int
    provider: str
    follow_up: bool
    template: str
    tries: int
    to: str
    name: str
    context: str
    variables: dict[str, Any]


_QUEUED = CallStatus.QUEUED.value


def _take_starts_query(channel: str, locked: bool) -> Any:
    if channel == "call":
        table, columns = t.calls, _k
        fields = [_k.id, _k.public_id, _k.campaign_id, _k.contact_id, _k.provider, _k.follow_up, _k.start_tries]
        extra = _k.status == _QUEUED
    else:
        table, columns = t.messages, _m
        fields = [_m.id, _m.session_id, _m.campaign_id, _m.contact_id, _m.provider, _m.template, _m.start_tries]
        extra = _m.error_code == ""
    query = (
        select(*fields, _c.contact, _c.name, _c.context, _c.input_variables)
        .join(t.contacts, _c.id == columns.contact_id)
        .where(
            columns.start_after.is_not(None),
            columns.start_after <= bindparam("now"),
            or_(columns.worker_id.is_(None), columns.worker_id == bindparam("worker")),
            extra,
        )
        .order_by(columns.start_after, columns.id)
        .limit(bindparam("limit"))
    )
    return query.with_for_update(of=table, skip_locked=True) if locked else query


# Built once: the starter runs them on every pass, and building a Core statement costs more than running it.
_TAKE_STARTS = {
    (channel, locked): _take_starts_query(channel, locked)
    for channel in ("call", "message")
    for locked in (False, True)
}
_MARK_TAKEN = {
    (channel, locked): update(table)
    .where(
        table.c.id == any_(bindparam("ids", type_=postgresql.ARRAY(Integer)))
        if locked
        else table.c.id.in_(bindparam("ids", expanding=True))
    )
    .values(worker_id=bindparam("worker"))
    for channel, table in (("call", t.calls), ("message", t.messages))
    for locked in (False, True)
}


def take_starts(tx: Tx, channel: str, worker_id: int, now: datetime, limit: int) -> list[Start]:
    """Starts due for this worker: its own claims and any in the pool (retries, a dead worker's), locked and marked
    as its own. `channel` is "call" or "message"."""
    locked = tx.locks_rows
    params = {"now": now, "worker": worker_id, "limit": limit}
    rows = tx.connection.execute(_TAKE_STARTS[(channel, locked)], params).all()
    if not rows:
        return []
    tx.connection.execute(_MARK_TAKEN[(channel, locked)], {"ids": [row[0] for row in rows], "worker": worker_id})
    starts = []
    for row in rows:
        is_call = channel == "call"
        starts.append(
            Start(
                id=row[0],
                public_id=row[1] if is_call else str(row[0]),
                campaign_id=row[2],
                contact_id=row[3],
                provider=row[4],
                follow_up=bool(row[5]) if is_call else False,
                template="" if is_call else str(row[5]),
                tries=int(row[6]),
                to=row[7],
                name=row[8],
                context=row[9],
                variables=dict(row[10] or {}),
            )
        )
    return starts


def started(tx: Tx, channel: str, pairs: Sequence[tuple[int, str]], *, wait: bool = True) -> list[tuple[int, str]]:
    """The provider took these attempts: (row id, provider's id). Only a start still pending is written, so an id
    already learnt from a webhook is kept. With `wait=False` (PostgreSQL), rows another transaction holds (a worker
    applying the call's first events) are not waited for: they are returned, to be written in a transaction of their
    own, so that this one does not hold the others meanwhile. Returns the pairs not written."""
    if not pairs:
        return []
    table, columns, id_column = (
        (t.calls, _k, "provider_call_id") if channel == "call" else (t.messages, _m, "provider_message_id")
    )
    if tx.locks_rows:
        held: set[int] = set()
        if not wait:
            found = tx.connection.exec_driver_sql(_LOCK_PENDING[channel], (sorted({row_id for row_id, _ in pairs}),))
            held = {row[0] for row in found if not row[1]}
        rows = [(row_id, provider_id, None) for row_id, provider_id in pairs if row_id not in held]
        pg_batch.update(tx.connection, table, ["id"], [id_column, "start_after"], rows, _STILL_PENDING[channel])
        return [pair for pair in pairs if pair[0] in held]
    tx.connection.execute(
        update(table)
        .where(and_(columns.id == bindparam("_id"), columns.start_after.is_not(None)))
        .values({id_column: bindparam("_pid"), "start_after": None}),
        [{"_id": row_id, "_pid": provider_id} for row_id, provider_id in pairs],
    )
    return []


# The pending starts among some ids (given once each), each locked unless another transaction holds it (then `locked`
# is false). Each id is looked up by its own index probe (a LATERAL subquery with LIMIT 1 is not flattened into a
# join): as `id = ANY(ids)`, the planner read the whole table whenever it thought that cheaper than ~30 probes, which
# on a table of a few thousand rows (a fresh database, or one never analyzed) is every time, at ~1 µs of CPU a row.
_LOCK_PENDING = {
    channel: f"""
SELECT c.id, l.id IS NOT NULL AS locked
FROM unnest(%s::integer[]) AS w(id)
CROSS JOIN LATERAL (SELECT y.id FROM {table} AS y WHERE y.id = w.id AND y.start_after IS NOT NULL LIMIT 1) AS c
LEFT JOIN LATERAL (SELECT x.id FROM {table} AS x WHERE x.id = c.id FOR UPDATE SKIP LOCKED) AS l ON true
"""
    for channel, table in (("call", "calls"), ("message", "messages"))
}


def retry_later(tx: Tx, channel: str, retries: Sequence[tuple[Start, str, str]], now: datetime) -> None:
    """Starts that met a retryable error (rate limit, server error, timeout): back to the pool after a backoff that
    doubles with each try (5 s, 10 s, … at most 5 minutes). `failed_retry_limit` is not touched."""
    if not retries:
        return
    table, columns = (t.calls, _k) if channel == "call" else (t.messages, _m)
    values: dict[str, Any] = {
        "start_after": bindparam("_after"),
        "start_tries": bindparam("_tries"),
        "worker_id": None,
    }
    if channel == "call":
        values["error_code"] = bindparam("_code")
        values["error_msg"] = bindparam("_msg")
    params = [
        {
            "_id": start.id,
            "_after": now + min(timedelta(minutes=5), timedelta(seconds=5) * 2 ** min(start.tries, 10)),
            "_tries": start.tries + 1,
            "_code": code,
            "_msg": message,
        }
        for start, code, message in retries
    ]
    tx.connection.execute(
        update(table).where(and_(columns.id == bindparam("_id"), columns.start_after.is_not(None))).values(values),
        params,
    )


def rejected(tx: Tx, channel: str, failures: Sequence[tuple[Start, str, str]]) -> list[str]:
    """Starts the provider refused: recorded with its code and message, no longer pending. Returns the external id
    each is known by from now on (`start-<id>`), under which its `failed` event is applied."""
    if not failures:
        return []
    table, columns, id_column = (
        (t.calls, _k, "provider_call_id") if channel == "call" else (t.messages, _m, "provider_message_id")
    )
    external = [f"{'start' if channel == 'call' else 'send'}-{start.public_id}" for start, _, _ in failures]
    tx.connection.execute(
        update(table)
        .where(columns.id == bindparam("_id"))
        .values(
            {
                id_column: bindparam("_pid"),
                "start_after": None,
                "error_code": bindparam("_code"),
                "error_msg": bindparam("_msg"),
            }
        ),
        [
            {"_id": start.id, "_pid": pid, "_code": code[:16] if channel != "call" else code[:32], "_msg": message}
            for (start, code, message), pid in zip(failures, external, strict=True)
        ],
    )
    return external


def orphaned_starts(tx: Tx, channel: str, dead: Sequence[int]) -> list[tuple[int, str, str, int]]:
    """Pending starts claimed by dead workers: (row id, public id, provider, campaign id)."""
    if not dead:
        return []
    if channel == "call":
        query = select(_k.id, _k.public_id, _k.provider, _k.campaign_id).where(
            _k.worker_id.in_(list(dead)), _k.start_after.is_not(None), _k.status == _QUEUED
        )
        return [(row[0], row[1], row[2], row[3]) for row in tx.connection.execute(query)]
    query = select(_m.id, _m.provider, _m.campaign_id).where(_m.worker_id.in_(list(dead)), _m.start_after.is_not(None))
    return [(row[0], str(row[0]), row[1], row[2]) for row in tx.connection.execute(query)]


def release_worker(tx: Tx, worker_id: int) -> None:
    """A worker stopping cleanly gives its pending starts back to the pool (none were sent: it finished its round)."""
    for table, columns in ((t.calls, _k), (t.messages, _m)):
        tx.connection.execute(
            update(table).where(columns.worker_id == worker_id, columns.start_after.is_not(None)).values(worker_id=None)
        )


def release(tx: Tx, channel: str, ids: Sequence[int]) -> None:
    """Give pending starts back to the pool (a dead worker's, for a provider that honours idempotency keys)."""
    if ids:
        table, columns = (t.calls, _k) if channel == "call" else (t.messages, _m)
        tx.connection.execute(update(table).where(columns.id.in_(list(ids))).values(worker_id=None))


def adopt(tx: Tx, provider: str, subject: str, pairs: Sequence[tuple[str, str]]) -> None:
    """Provider ids learnt from webhooks that echo Herald's id, as (attempt id, provider's id): a start whose answer
    was never recorded (its worker died, the answer was lost: no id, or a `pending:` stand-in) is complete from here
    on, and its events find it."""
    # A call's events all echo its id (~3 per call): one update per attempt, not per event.
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return
    if tx.locks_rows:
        _adopt_postgresql(tx, provider, subject, pairs)
        return
    if subject == "call":
        tx.connection.execute(
            update(t.calls)
            .where(
                _k.public_id == bindparam("_aid"),
                _k.provider == provider,
                or_(
                    _k.provider_call_id.is_(None),
                    _k.start_after.is_not(None),
                    _k.provider_call_id.startswith(PENDING_PREFIX, autoescape=True),
                ),
            )
            .values(provider_call_id=bindparam("_pid"), start_after=None),
            [{"_aid": aid, "_pid": pid} for aid, pid in pairs],
        )
        return
    numeric = [(int(aid), pid) for aid, pid in pairs if aid.isdigit()]
    if numeric:
        tx.connection.execute(
            update(t.messages)
            .where(
                _m.id == bindparam("_aid"),
                _m.provider == provider,
                or_(
                    _m.provider_message_id.is_(None),
                    _m.start_after.is_not(None),
                    _m.provider_message_id.startswith(PENDING_PREFIX, autoescape=True),
                ),
            )
            .values(provider_message_id=bindparam("_pid"), start_after=None),
            [{"_aid": aid, "_pid": pid} for aid, pid in numeric],
        )


#: `started`'s condition on PostgreSQL: only a start still pending is written.
_STILL_PENDING = {"call": "calls.start_after IS NOT NULL", "message": "messages.start_after IS NOT NULL"}
# `adopt`'s condition on PostgreSQL: a start whose answer was never recorded.
_UNRECORDED = (
    "{table}.{column} IS NULL OR {table}.start_after IS NOT NULL OR starts_with({table}.{column}, '"
    + PENDING_PREFIX
    + "')"
)


def _adopt_postgresql(tx: Tx, provider: str, subject: str, pairs: Sequence[tuple[str, str]]) -> None:
    # One statement for the batch, each attempt's first id as an executemany in the given order would keep.
    if subject == "call":
        table, key, column = t.calls, "public_id", "provider_call_id"
        rows: list[tuple[Any, ...]] = [(aid, provider, pid, None) for aid, pid in pairs]
    else:
        table, key, column = t.messages, "id", "provider_message_id"
        rows = [(int(aid), provider, pid, None) for aid, pid in pairs if aid.isdigit()]
    first = list({row[0]: row for row in reversed(rows)}.values())
    condition = _UNRECORDED.format(table=table.name, column=column)
    pg_batch.update(tx.connection, table, [key, "provider"], [column, "start_after"], first, condition)


# Each call (public ids given once each): locked unless another transaction holds it (then `locked` is false). One
# index probe per id, as in `_LOCK_PENDING`.
_LOCK_CALLS = """
SELECT c.public_id, l.id IS NOT NULL AS locked
FROM unnest(%s::text[]) AS w(public_id)
CROSS JOIN LATERAL (SELECT y.id, y.public_id FROM calls AS y WHERE y.public_id = w.public_id LIMIT 1) AS c
LEFT JOIN LATERAL (SELECT x.id FROM calls AS x WHERE x.id = c.id FOR UPDATE SKIP LOCKED) AS l ON true
"""


def lock_calls(tx: Tx, public_ids: Sequence[str]) -> set[str]:
    """PostgreSQL: lock the calls with these public ids that no other transaction holds (`FOR UPDATE SKIP LOCKED`);
    returns the ids of those held elsewhere (ids of no call are in neither). A worker applies a call's events only
    with its row locked, and leaves those of a call another worker is applying for a later batch, instead of waiting
    for that worker's transaction (and deadlocking with it when each holds a call the other wants)."""
    wanted = sorted(set(public_ids))
    if not wanted or not tx.locks_rows:
        return set()
    return {row[0] for row in tx.connection.exec_driver_sql(_LOCK_CALLS, (wanted,)) if not row[1]}


def hand_back(tx: Tx, channel: str, starts: Sequence[Start], at: datetime) -> None:
    """Starts this worker will not make now (the provider's start rate is used up): back to the pool, due at `at`,
    with their tries and error untouched (waiting for a rate is no failure)."""
    if not starts:
        return
    table, columns = (t.calls, _k) if channel == "call" else (t.messages, _m)
    tx.connection.execute(
        update(table)
        .where(columns.id.in_([start.id for start in starts]), columns.start_after.is_not(None))
        .values(start_after=at, worker_id=None)
    )
