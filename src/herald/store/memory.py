"""A simulated run's in-memory view of its running phone campaigns (SQLite only).

At 10 calls in flight a simulated step makes well under one attempt, yet on the database it would still read the
campaign's in-flight count, its due contacts, the next due time and the suppression lists, and write a few rows: the
step's statements were the run's cost. A simulated run has the database to itself for campaign work (`herald run
--simulate` refuses to start beside workers or another simulated run), so it keeps its running phone campaigns in
memory instead: every contact, the due order in a heap, the contacts in flight and their leases, the calls in flight
with the event kinds stored for each, and the suppression lists. Steps read that view; their writes are kept and
written at the end of the batch of steps that shares one transaction (`Memory.tx`), before it commits.

Other processes may still commit between batches (a pause, a contact import, a suppression, a campaign edit).
SQLite's `PRAGMA data_version`, read on the run's own connection at the start of each batch, changes exactly when
another connection has committed since: the view is then dropped and read again. Campaigns themselves are read from
the database at the start of each batch (and after the engine changes one), so a pause committed elsewhere stops new
attempts at the next batch, as it did when every step read them.

Anything the view does not cover goes to the database as before (`Tx`), after the kept writes are written: a
campaign of another channel, a call or contact of a campaign not viewed (paused meanwhile), an expired lease, an
event the view cannot tell new from seen. Any use of `tx.connection` writes them first too, so code that reads or
writes the database directly (the outbox, campaign status changes) always sees what the steps did.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, bindparam, select

from herald.domain.replacing import replacer
from herald.domain.rules import ContactState
from herald.domain.statuses import TERMINAL_CALL_STATUSES, CampaignStatus, Channel
from herald.providers.base import ProviderEvent
from herald.store import campaign_dnc
from herald.store import schema as t
from herald.store.calls import CALL_INSERT_KEYS, CALL_VIEW_FIELDS, INSERT_CALLS, inserted_call_view
from herald.store.events import applied_event_values
from herald.store.queries import ContactChange, Store, Tx
from herald.store.records import CallRecord, Campaign, ContactRecord

_RUNNING = (CampaignStatus.ACTIVE, CampaignStatus.COOLDOWN)
_TERMINAL = frozenset(status.value for status in TERMINAL_CALL_STATUSES)
# The contact columns besides its state that the engine's phone steps set; the view keeps all of them.
_EXTRA_KEYS = ("attempts_in_cycle", "current_message_id", "inflight_id", "lease_expires_at")
_EXTRA = frozenset(_EXTRA_KEYS)
_c = t.contacts.c
_k = t.calls.c
_LEASES = select(_c.id, _c.lease_expires_at).where(_c.campaign_id == bindparam("cid"), _c.inflight_id.is_not(None))
_CALLS_BY_ID = select(
    _k.id,
    _k.public_id,
    _k.campaign_id,
    _k.contact_id,
    _k.status,
    _k.answered_by,
    _k.started_at,
    _k.ended_at,
    _k.follow_up,
    _k.provider,
    _k.provider_call_id,
).where(_k.id.in_(bindparam("ids", expanding=True)))
_EVENT_KINDS = select(t.events.c.external_id, t.events.c.kind).where(
    t.events.c.provider == bindparam("provider"), t.events.c.external_id.in_(bindparam("ids", expanding=True))
)


def usable(store: Store) -> bool:
    """True where the view can run: SQLite through pysqlite (its `data_version` and the direct path)."""
    dialect = store.engine.dialect
    return dialect.name == "sqlite" and dialect.driver == "pysqlite" and dialect.paramstyle == "qmark"


def _utc(value: datetime | None) -> datetime | None:
    # As the database gives it back: UTC-aware (SQLite keeps microseconds, so nothing else is lost).
    if value is None or value.tzinfo is UTC:
        return value
    return value.astimezone(UTC)


def _stored(state: ContactState) -> ContactState:
    """`state` as it reads back from the contacts table."""
    due_at, respond_by = state.due_at, state.respond_by
    if (due_at is None or due_at.tzinfo is UTC) and (respond_by is None or respond_by.tzinfo is UTC):
        return state
    return ContactState(
        status=state.status,
        retries=state.retries,
        failed_retries=state.failed_retries,
        final=state.final,
        due_at=_utc(due_at),
        respond_by=_utc(respond_by),
        follow_up=state.follow_up,
        follow_up_attempts=state.follow_up_attempts,
        calls=state.calls,
        billed_seconds=state.billed_seconds,
        tags=state.tags,
        extracted=state.extracted,
        opted_out=state.opted_out,
    )


if TYPE_CHECKING:
    from dataclasses import replace as _replace_record
else:
    # A contact changes at every attempt and every call end: dataclasses.replace, about three times cheaper.
    _replace_record = replacer(ContactRecord)


def _keeps_cycle_open(record: ContactRecord) -> bool:
    # As `Tx.cycle_open`: not final, a follow-up pending, or in an attempt.
    state = record.state
    return not state.final or state.follow_up or record.inflight_id is not None


@dataclass(slots=True)
class _View:
    """One campaign's contacts as the view orders them."""

    campaign_id: int
    business_id: int
    ids: list[int] = field(default_factory=list)
    #: (due_at, id) of contacts owed an attempt; stale entries (the contact changed since) are skipped when met.
    due: list[tuple[datetime, int]] = field(default_factory=list)
    inflight: set[int] = field(default_factory=set)
    open: int = 0


class Memory:
    """The view, kept across the batches of one simulated run (one connection of its own)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._connection: Connection | None = None
        self._version: int | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything (only once the kept writes are written, or rolled back)."""
        self.views: dict[int, _View] = {}
        self.contacts: dict[int, ContactRecord] = {}
        self.leases: dict[int, datetime | None] = {}
        #: Contacts changed since the last write, with the time of their last change (their `last_update`).
        self.dirty: dict[int, datetime] = {}
        #: Calls by id as `Tx` keeps them (the values of `_CALLS_BY_PROVIDER_ID` without the provider id).
        self.calls: dict[int, list[Any]] = {}
        self.call_ids: dict[tuple[str, str], int] = {}
        #: The event kinds stored for each call above (the events' unique key is provider, external id, kind).
        self.kinds: dict[int, set[str]] = {}
        self.events: list[list[Any]] = []
        self.new_calls: dict[int, dict[str, Any]] = {}
        self.call_updates: dict[int, dict[str, Any]] = {}
        self.next_call_id: int | None = None
        self.suppressed: dict[int, set[str]] = {}
        self.listed: dict[int, set[str]] = {}

    @property
    def pending(self) -> bool:
        """True while some writes are kept, not yet written."""
        return bool(self.events or self.new_calls or self.call_updates or self.dirty)

    @contextmanager
    def tx(self) -> Iterator[MemoryTx]:
        """One write transaction, as `Store.tx`, on the run's own connection, with the view."""
        if self._connection is None:
            self._connection = self.store.engine.connect()
        connection = self._connection
        with self.store.write_gate(), connection.begin():
            # Changes exactly when another connection has committed since this one last looked.
            version = connection.exec_driver_sql("PRAGMA data_version").scalar()
            if version != self._version:
                self.reset()
                self._version = version
            tx = MemoryTx(connection, self)
            try:
                yield tx
                tx.flush()
            except BaseException:
                # Rolled back: the view may hold what was never written.
                self.reset()
                self._version = None
                raise

    def close(self) -> None:
        """Release the run's connection (nothing is kept: every batch wrote its changes before committing)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.reset()


class MemoryTx(Tx):
    """A `Tx` whose engine queries on viewed campaigns are answered by the view and whose writes wait for `flush`."""

    def __init__(self, connection: Connection, memory: Memory) -> None:
        self.memory = memory
        self._raw = connection
        super().__init__(connection)
        self._campaigns: dict[tuple[CampaignStatus, ...], list[Campaign]] = {}

    @property
    def connection(self) -> Connection:
        """The connection, once the kept writes are written (whoever uses it directly sees them)."""
        if self.memory.pending:
            self.flush()
        return self._raw

    @connection.setter
    def connection(self, value: Connection) -> None:
        self._raw = value

    # Every statement `Tx` runs goes through these (or `connection`): the kept writes go first.

    def _rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
        if self.memory.pending:
            self.flush()
        return super()._rows(statement, params)

    def _stream(self, statement: Any, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        if self.memory.pending:
            self.flush()
        return super()._stream(statement, params)

    def flush(self) -> None:
        """Write the kept writes: events, new calls (with their later values), call updates, then contacts."""
        memory = self.memory
        events, new_calls, call_updates, dirty = memory.events, memory.new_calls, memory.call_updates, memory.dirty
        memory.events, memory.new_calls, memory.call_updates, memory.dirty = [], {}, {}, {}
        if events:
            self.insert_event_rows(events)
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in new_calls.values():
            groups.setdefault(tuple(row), []).append(row)
        for keys, rows in groups.items():
            self._many(INSERT_CALLS, rows, keys)
        if call_updates:
            self.write_call_values(call_updates.items())
        if dirty:
            contacts, leases = memory.contacts, memory.leases
            changes = []
            for contact_id in sorted(dirty):
                record = contacts[contact_id]
                extra = {
                    "attempts_in_cycle": record.attempts_in_cycle,
                    "current_message_id": record.current_message_id,
                    "inflight_id": record.inflight_id,
                    "lease_expires_at": leases.get(contact_id),
                }
                changes.append((contact_id, record.state, extra, dirty[contact_id]))
            self.save_contacts_at(changes)
        # Ended calls leave the view: another event for one (rare) is looked up in the table.
        ended = [call_id for call_id, view in memory.calls.items() if view[4] in _TERMINAL]
        for call_id in ended:
            del memory.calls[call_id]
            memory.kinds.pop(call_id, None)
        if ended:
            memory.call_ids = {key: call_id for key, call_id in memory.call_ids.items() if call_id in memory.calls}

    def _drop(self) -> None:
        """Leave the rest of the batch to the database (after writing what is kept); the next batch reads anew."""
        self.flush()
        self.memory.reset()

    # --- campaigns ---------------------------------------------------------------------------------------------

    def campaigns(self, statuses: Iterable[CampaignStatus] | None = None, *, lock: bool = False) -> list[Campaign]:
        if statuses is None:
            return super().campaigns(None, lock=lock)
        key = tuple(statuses)
        found = self._campaigns.get(key)
        if found is None:
            # Read once per batch: nobody else can change a campaign while this transaction holds the write lock,
            # and the engine's own changes go through `update_campaign`, which forgets this.
            found = self._campaigns[key] = super().campaigns(key, lock=lock)
            for campaign in found:
                if (
                    campaign.status in _RUNNING
                    and campaign.channel is Channel.PHONE_CALL
                    and campaign.id not in self.memory.views
                ):
                    self._load(campaign)
        return list(found)

    def update_campaign(
        self, campaign_id: int, expected: CampaignStatus, expected_cycle: int | None = None, **values: Any
    ) -> None:
        self._campaigns.clear()
        super().update_campaign(campaign_id, expected, expected_cycle, **values)

    def _load(self, campaign: Campaign) -> None:
        memory = self.memory
        view = _View(campaign.id, campaign.business_id)
        for record in super().all_contacts(campaign.id):
            memory.contacts[record.id] = record
            view.ids.append(record.id)
            if record.inflight_id is not None:
                view.inflight.add(record.id)
            elif record.state.due_at is not None:
                view.due.append((record.state.due_at, record.id))
            view.open += _keeps_cycle_open(record)
        heapq.heapify(view.due)
        for contact_id, lease in super()._rows(_LEASES, {"cid": campaign.id}):
            memory.leases[contact_id] = lease
        inflight = sorted({memory.contacts[contact_id].inflight_id or 0 for contact_id in view.inflight})
        by_provider: dict[str, dict[str, int]] = {}
        for start in range(0, len(inflight), 500):
            for row in super()._rows(_CALLS_BY_ID, {"ids": inflight[start : start + 500]}):
                call_id, provider, provider_call_id = row[0], row[9], row[10]
                if provider_call_id is None:
                    continue  # never started: its events, if any, are looked up in the table
                memory.calls[call_id] = [*row[:8], bool(row[8])]
                memory.call_ids[(provider, provider_call_id)] = call_id
                memory.kinds[call_id] = set()
                by_provider.setdefault(provider, {})[provider_call_id] = call_id
        for provider, ids in by_provider.items():
            external = sorted(ids)
            for start in range(0, len(external), 500):
                params = {"provider": provider, "ids": external[start : start + 500]}
                for external_id, kind in super()._rows(_EVENT_KINDS, params):
                    memory.kinds[ids[external_id]].add(kind)
        if campaign.business_id not in memory.suppressed:
            memory.suppressed[campaign.business_id] = super().suppressed_numbers(campaign.business_id)
        memory.listed[campaign.id] = campaign_dnc.listed_numbers(self, campaign.id)
        memory.views[campaign.id] = view

    # --- contacts ----------------------------------------------------------------------------------------------

    def barred_numbers(self, business_id: int, campaign_id: int, numbers: Sequence[str]) -> set[str] | None:
        """Which of `numbers` are on the business's or the campaign's suppression list; None when not viewed."""
        suppressed = self.memory.suppressed.get(business_id)
        listed = self.memory.listed.get(campaign_id)
        if suppressed is None or listed is None:
            return None
        return {number for number in numbers if number in suppressed or number in listed}

    def suppress(self, business_id: int, number: str, now: datetime, source: str) -> None:
        # It closes the number in every campaign of the business, viewed or not.
        self._drop()
        super().suppress(business_id, number, now, source)

    def due_contacts(self, campaign_id: int, now: datetime, limit: int) -> list[ContactRecord]:
        view = self.memory.views.get(campaign_id)
        if view is None:
            return super().due_contacts(campaign_id, now, limit)
        contacts = self.memory.contacts
        heap = view.due
        found: list[ContactRecord] = []
        taken: list[tuple[datetime, int]] = []
        seen: set[int] = set()
        while heap and len(found) < limit:
            entry = heap[0]
            if entry[0] > now:
                break
            heapq.heappop(heap)
            record = contacts[entry[1]]
            if record.state.due_at != entry[0] or record.inflight_id is not None or entry[1] in seen:
                continue
            seen.add(entry[1])
            found.append(record)
            taken.append(entry)
        # They stay due until their attempts start (as in the table).
        for entry in taken:
            heapq.heappush(heap, entry)
        return found

    def next_due_at(self, campaign_id: int) -> datetime | None:
        view = self.memory.views.get(campaign_id)
        if view is None:
            return super().next_due_at(campaign_id)
        contacts = self.memory.contacts
        heap = view.due
        while heap:
            due_at, contact_id = heap[0]
            record = contacts[contact_id]
            if record.state.due_at == due_at and record.inflight_id is None:
                return due_at
            heapq.heappop(heap)
        return None

    def inflight_count(self, campaign_id: int) -> int:
        view = self.memory.views.get(campaign_id)
        return super().inflight_count(campaign_id) if view is None else len(view.inflight)

    def next_lease_expiry(self, campaign_id: int) -> datetime | None:
        view = self.memory.views.get(campaign_id)
        if view is None:
            return super().next_lease_expiry(campaign_id)
        leases = self.memory.leases
        return min((lease for i in view.inflight if (lease := leases.get(i)) is not None), default=None)

    def expired_attempts(self, campaign_id: int, now: datetime) -> list[tuple[str, str, str]]:
        view = self.memory.views.get(campaign_id)
        if view is not None:
            leases = self.memory.leases
            if not any((lease := leases.get(i)) is not None and lease <= now for i in view.inflight):
                return []
            # Rare (the simulator answers every call): the table's way, and the view read anew next batch.
            self._drop()
        return super().expired_attempts(campaign_id, now)

    def cycle_open(self, campaign_id: int) -> bool:
        view = self.memory.views.get(campaign_id)
        return super().cycle_open(campaign_id) if view is None else view.open > 0

    def contact_count(self, campaign_id: int) -> int:
        view = self.memory.views.get(campaign_id)
        return super().contact_count(campaign_id) if view is None else len(view.ids)

    def all_contacts(self, campaign_id: int) -> Iterator[ContactRecord]:
        view = self.memory.views.get(campaign_id)
        if view is None:
            return super().all_contacts(campaign_id)
        contacts = self.memory.contacts
        return iter([contacts[contact_id] for contact_id in view.ids])

    def contacts_by_id(self, ids: Iterable[int]) -> dict[int, ContactRecord]:
        contacts = self.memory.contacts
        found: dict[int, ContactRecord] = {}
        missing: list[int] = []
        for contact_id in sorted(set(ids)):
            record = contacts.get(contact_id)
            if record is None:
                missing.append(contact_id)
            else:
                found[contact_id] = record
        if missing:
            found.update(super().contacts_by_id(missing))
        return found

    def save_contacts(self, changes: Sequence[ContactChange], now: datetime) -> None:
        if not changes:
            return
        memory = self.memory
        contacts, views, leases, dirty = memory.contacts, memory.views, memory.leases, memory.dirty
        rest: list[ContactChange] = []
        for change in changes:
            contact_id, state, extra = change
            old = contacts.get(contact_id)
            if old is None or not extra.keys() <= _EXTRA:
                rest.append(change)
                continue
            due_at = state.due_at
            if not (due_at is None or due_at.tzinfo is UTC) or not (
                state.respond_by is None or state.respond_by.tzinfo is UTC
            ):
                state = _stored(state)
                due_at = state.due_at
            inflight_id = extra.get("inflight_id", old.inflight_id)
            record = _replace_record(
                old,
                state=state,
                inflight_id=inflight_id,
                current_message_id=extra.get("current_message_id", old.current_message_id),
                attempts_in_cycle=extra.get("attempts_in_cycle", old.attempts_in_cycle),
            )
            if "lease_expires_at" in extra:
                leases[contact_id] = _utc(extra["lease_expires_at"])
            contacts[contact_id] = record
            dirty[contact_id] = now
            view = views[old.campaign_id]
            if inflight_id is None:
                view.inflight.discard(contact_id)
                # A new entry unless the one already in the heap still stands.
                if due_at is not None and (due_at != old.state.due_at or old.inflight_id is not None):
                    heapq.heappush(view.due, (due_at, contact_id))
            else:
                view.inflight.add(contact_id)
            # As `_keeps_cycle_open`, for the record before and after.
            before = old.state
            view.open += (not state.final or state.follow_up or inflight_id is not None) - (
                not before.final or before.follow_up or old.inflight_id is not None
            )
        if rest:
            if any(change[0] in contacts for change in rest):
                self._drop()  # columns the view does not keep: the table's way from here
            else:
                self.flush()
            super().save_contacts(rest, now)

    # --- calls -------------------------------------------------------------------------------------------------

    def insert_calls(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        memory = self.memory
        if not rows:
            return []
        if any(
            row["campaign_id"] not in memory.views
            or row.get("provider_call_id") is None
            or not row.keys() <= CALL_INSERT_KEYS
            for row in rows
        ):
            self.flush()
            memory.next_call_id = None
            return super().insert_calls(rows)
        if memory.next_call_id is None:
            # Without AUTOINCREMENT SQLite gives a new row the largest id plus one: the ids the rows would get.
            largest = self._raw.exec_driver_sql("SELECT max(id) FROM calls").scalar()
            memory.next_call_id = (largest or 0) + 1
        ids: list[int] = []
        for row in rows:
            call_id = memory.next_call_id
            memory.next_call_id += 1
            memory.new_calls[call_id] = {"id": call_id, **row}
            memory.calls[call_id] = inserted_call_view(call_id, row)
            memory.call_ids[(row["provider"], row["provider_call_id"])] = call_id
            memory.kinds[call_id] = set()
            ids.append(call_id)
        return ids

    def calls_by_provider_ids(self, provider: str, provider_ids: Iterable[str]) -> dict[str, CallRecord]:
        memory = self.memory
        found: dict[str, CallRecord] = {}
        missing: list[str] = []
        for provider_id in set(provider_ids):
            call_id = memory.call_ids.get((provider, provider_id))
            if call_id is None:
                missing.append(provider_id)
            else:
                found[provider_id] = CallRecord(*memory.calls[call_id])
        if missing:
            found.update(super().calls_by_provider_ids(provider, missing))
        return dict(sorted(found.items()))

    def update_calls(self, records: Sequence[CallRecord]) -> None:
        memory = self.memory
        rest: list[CallRecord] = []
        for record in records:
            values = record.values
            if not values:
                continue
            view = memory.calls.get(record.id)
            if view is None:
                rest.append(record)
                continue
            for key, index in CALL_VIEW_FIELDS.items():
                if key in values:
                    view[index] = values[key]
            row = memory.new_calls.get(record.id)
            if row is not None:
                row.update(values)
            else:
                memory.call_updates.setdefault(record.id, {}).update(values)
        if rest:
            self.flush()
            super().update_calls(rest)

    # --- events ------------------------------------------------------------------------------------------------

    def record_events(self, events: Sequence[ProviderEvent], now: datetime) -> list[ProviderEvent]:
        memory = self.memory
        unique: dict[tuple[str, str, str], ProviderEvent] = {}
        for event in events:
            key = (event.provider, event.external_id, event.kind)  # event.key, without the property's call
            if key not in unique:
                unique[key] = event
        known: list[tuple[ProviderEvent, set[str]]] = []
        call_ids, all_kinds = memory.call_ids, memory.kinds
        for event in unique.values():
            call_id = call_ids.get((event.provider, event.external_id))
            kinds = all_kinds.get(call_id) if call_id is not None else None
            if kinds is None:
                # Not a viewed call's: the table tells new from seen.
                self.flush()
                fresh = super().record_events(events, now)
                for item in fresh:
                    call_id = memory.call_ids.get((item.provider, item.external_id))
                    if call_id is not None and call_id in memory.kinds:
                        memory.kinds[call_id].add(item.kind)
                return fresh
            known.append((event, kinds))
        fresh = []
        rows = memory.events
        for event, kinds in known:
            if event.kind in kinds:
                continue
            kinds.add(event.kind)
            fresh.append(event)
            rows.append(applied_event_values(event, now))
        return fresh
