"""Contacts (and the suppression lists that close them) as `Tx` reads and writes them: imports, the engine's due and
in-flight reads, state writes, leases."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, and_, any_, bindparam, false, func, insert, select, true, update

from herald.domain.rules import NO_TAGS, ContactState
from herald.domain.statuses import Channel, ContactStatus
from herald.store import pg_batch
from herald.store import schema as t
from herald.store.base import INTEGER_ARRAY, TEXT_ARRAY, TxBase, chunks, dialect_insert
from herald.store.direct import name_index
from herald.store.records import ContactRecord

#: A contact id, its new state, and other contact columns to set with it.
ContactChange = tuple[int, ContactState, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class NewContact:
    """A contact to insert (or, with `update`, to overwrite by number)."""

    contact: str
    name: str
    context: str
    external_id: str | None = None
    input_variables: dict[str, str] | None = None
    override_agent_name: str | None = None
    override_agent_voice_id: str | None = None
    update: bool = False


def state_values(state: ContactState) -> dict[str, Any]:
    """The contact columns that hold a ContactState."""
    return {
        "status": state.status.value,
        "retries": state.retries,
        "failed_retries": state.failed_retries,
        "final": state.final,
        "due_at": state.due_at,
        "respond_by": state.respond_by,
        "follow_up": state.follow_up,
        "follow_up_attempts": state.follow_up_attempts,
        "calls": state.calls,
        "billed_seconds": state.billed_seconds,
        "tags": sorted(state.tags),
        "extracted": dict(state.extracted),
        "opted_out": state.opted_out,
    }


STATE_COLUMNS = tuple(state_values(ContactState()).keys())
CONTACT_COLUMNS = [
    t.contacts.c.id,
    t.contacts.c.campaign_id,
    t.contacts.c.contact,
    t.contacts.c.name,
    t.contacts.c.context,
    t.contacts.c.external_id,
    t.contacts.c.input_variables,
    t.contacts.c.inflight_id,
    t.contacts.c.current_message_id,
    t.contacts.c.attempts_in_cycle,
    *(t.contacts.c[name] for name in STATE_COLUMNS),
]


_CONTACT_STATUSES = {status.value: status for status in ContactStatus}
_CONTACT_STATUS_TEXT = {status: status.value for status in ContactStatus}


def contact_from_row(row: Sequence[Any]) -> ContactRecord:
    """A contact from a row of `CONTACT_COLUMNS` (positional: SQLAlchemy rows and DBAPI rows alike)."""
    return ContactRecord(
        id=row[0],
        campaign_id=row[1],
        contact=row[2],
        name=row[3],
        context=row[4],
        external_id=row[5],
        input_variables=dict(row[6] or {}),
        state=ContactState(
            status=_CONTACT_STATUSES.get(row[10]) or ContactStatus(row[10]),
            retries=row[11],
            failed_retries=row[12],
            final=bool(row[13]),
            due_at=row[14],
            respond_by=row[15],
            follow_up=bool(row[16]),
            follow_up_attempts=row[17],
            calls=row[18],
            billed_seconds=row[19],
            tags=frozenset(row[20]) if row[20] else NO_TAGS,
            extracted=dict(row[21] or {}),
            opted_out=bool(row[22]),
        ),
        inflight_id=row[7],
        current_message_id=row[8],
        attempts_in_cycle=row[9],
    )


# Contact imports: new rows and `if_duplicate: update` overwrites, written in chunks of this many.
_IMPORT_CHUNK = 10_000
_INSERT_CONTACT = insert(t.contacts)
_UPDATE_IMPORTED = (
    update(t.contacts)
    .where(and_(t.contacts.c.campaign_id == bindparam("_campaign"), t.contacts.c.contact == bindparam("_contact")))
    .values(
        name=bindparam("name"),
        context=bindparam("context"),
        external_id=bindparam("external_id"),
        input_variables=bindparam("input_variables"),
        last_update=bindparam("last_update"),
    )
)


# The engine's hot statements are built once with bound parameters: building a Core statement costs more than
# running a cached one, and the engine runs these every step.
_c = t.contacts.c
_STALE = (
    select(_c.inflight_id)
    .where(_c.campaign_id == bindparam("cid"), _c.inflight_id.is_not(None), _c.lease_expires_at <= bindparam("now"))
    .scalar_subquery()
)
_EXPIRED_CALLS = select(t.calls.c.provider, t.calls.c.provider_call_id, t.calls.c.id, t.calls.c.public_id).where(
    t.calls.c.id.in_(_STALE), t.calls.c.campaign_id == bindparam("cid")
)
_EXPIRED_MESSAGES = select(
    t.messages.c.provider, t.messages.c.provider_message_id, t.messages.c.id, t.messages.c.id
).where(t.messages.c.id.in_(_STALE), t.messages.c.campaign_id == bindparam("cid"))
_CHANNEL = select(t.campaigns.c.channel).where(t.campaigns.c.id == bindparam("cid"))
_INFLIGHT_COUNT = (
    select(func.count()).select_from(t.contacts).where(_c.campaign_id == bindparam("cid"), _c.inflight_id.is_not(None))
)
_DUE = (
    select(*CONTACT_COLUMNS)
    .where(
        _c.campaign_id == bindparam("cid"),
        _c.due_at.is_not(None),
        _c.due_at <= bindparam("now"),
        _c.inflight_id.is_(None),
    )
    .order_by(_c.due_at, _c.id)
    .limit(bindparam("limit"))
)
_NEXT_DUE = select(func.min(_c.due_at)).where(
    _c.campaign_id == bindparam("cid"), _c.due_at.is_not(None), _c.inflight_id.is_(None)
)
_NEXT_LEASE_EXPIRY = select(func.min(_c.lease_expires_at)).where(
    _c.campaign_id == bindparam("cid"), _c.inflight_id.is_not(None)
)
_ALL_CONTACTS = select(*CONTACT_COLUMNS).where(_c.campaign_id == bindparam("cid")).order_by(_c.id)
# For "campaign_id = ? AND inflight_id IS NOT NULL" SQLite picks ix_contacts_campaign_order as readily as the partial
# ix_contacts_campaign_inflight (both start with campaign_id, and without ANALYZE statistics it cannot tell which is
# small), and the first reads every contact of the campaign, each step. On SQLite these name the partial index.
name_index(
    "contacts", "ix_contacts_campaign_inflight", _INFLIGHT_COUNT, _NEXT_LEASE_EXPIRY, _EXPIRED_CALLS, _EXPIRED_MESSAGES
)
_CONTACTS_BY_ID = select(*CONTACT_COLUMNS).where(_c.id.in_(bindparam("ids", expanding=True)))
_CONTACTS_BY_ID_LOCKED = (
    select(*CONTACT_COLUMNS)
    .where(_c.id == any_(bindparam("ids", type_=INTEGER_ARRAY)))
    .order_by(_c.id)
    .with_for_update()
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
_CYCLE_PROBES = tuple(
    select(_c.id).where(_c.campaign_id == bindparam("cid"), condition).limit(1)
    for condition in (_c.final == false(), _c.follow_up == true(), _c.inflight_id.is_not(None))
)
_SUPPRESSED_AMONG = select(t.suppressions.c.contact).where(
    t.suppressions.c.business_id == bindparam("bid"), t.suppressions.c.contact.in_(bindparam("numbers", expanding=True))
)
_SUPPRESSED_AMONG_PG = select(t.suppressions.c.contact).where(
    t.suppressions.c.business_id == bindparam("bid"),
    t.suppressions.c.contact == any_(bindparam("numbers", type_=TEXT_ARRAY)),
)
_SAVE_CONTACTS: dict[tuple[str, ...], Any] = {}


def _extra_values(keys: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `keys` in a change's extra columns, as a tuple, in one C call per row: a generator per row was
    over a third of the time spent making the rows of a simulated run's batch."""
    if len(keys) > 1:
        return itemgetter(*keys)
    if keys:
        key = keys[0]
        return lambda extra: (extra[key],)
    return lambda extra: ()


class ContactQueries(TxBase):
    """Contacts and suppression lists."""

    def existing_numbers(self, campaign_id: int) -> set[str]:
        """E.164 numbers already in the campaign."""
        rows = self.connection.execute(select(t.contacts.c.contact).where(t.contacts.c.campaign_id == campaign_id))
        return {row[0] for row in rows}

    def suppressed_numbers(self, business_id: int, numbers: Iterable[str] | None = None) -> set[str]:
        """The business's opted-out numbers (all, or those among `numbers`)."""
        if numbers is None:
            query = select(t.suppressions.c.contact).where(t.suppressions.c.business_id == business_id)
            return {row[0] for row in self.connection.execute(query)}
        found: set[str] = set()
        for chunk in chunks(numbers):
            statement = _SUPPRESSED_AMONG_PG if self.locks_rows else _SUPPRESSED_AMONG
            found.update(row[0] for row in self._rows(statement, {"bid": business_id, "numbers": list(chunk)}))
        return found

    def add_contacts(
        self,
        campaign_id: int,
        contacts: Iterable[NewContact],
        now: datetime,
    ) -> tuple[int, int]:
        """Insert new contacts (queued, due now) and overwrite those marked `update`; returns (added, updated).

        `contacts` is consumed in chunks, so millions of rows never have all their parameters built at once.
        """
        base = {**state_values(ContactState(due_at=now)), "attempts_in_cycle": 0, "campaign_id": campaign_id}
        added = updated = 0
        for chunk in chunks(contacts, _IMPORT_CHUNK):
            new = [
                {
                    **base,
                    "contact": item.contact,
                    "name": item.name,
                    "context": item.context,
                    "external_id": item.external_id,
                    "input_variables": item.input_variables or {},
                    "override_agent_name": item.override_agent_name,
                    "override_agent_voice_id": item.override_agent_voice_id,
                    "last_update": now,
                    "created_at": now,
                }
                for item in chunk
                if not item.update
            ]
            updates = [
                {
                    "_contact": item.contact,
                    "_campaign": campaign_id,
                    "name": item.name,
                    "context": item.context,
                    "external_id": item.external_id,
                    "input_variables": item.input_variables or {},
                    "last_update": now,
                }
                for item in chunk
                if item.update
            ]
            if new:
                self._many(_INSERT_CONTACT, new, tuple(new[0]))
            if updates:
                self._many(_UPDATE_IMPORTED, updates)
            added += len(new)
            updated += len(updates)
        return added, updated

    def contact_count(self, campaign_id: int) -> int:
        """How many contacts the campaign has."""
        query = select(func.count()).select_from(t.contacts).where(t.contacts.c.campaign_id == campaign_id)
        return int(self.connection.execute(query).scalar_one())

    def status_counts(self, campaign_id: int) -> dict[str, int]:
        """Contacts per status."""
        rows = self.connection.execute(
            select(t.contacts.c.status, func.count())
            .where(t.contacts.c.campaign_id == campaign_id)
            .group_by(t.contacts.c.status)
            .order_by(t.contacts.c.status)
        )
        return {row[0]: int(row[1]) for row in rows}

    def due_contacts(self, campaign_id: int, now: datetime, limit: int) -> list[ContactRecord]:
        """Contacts owed an attempt by `now` and not in one, earliest due first; on PostgreSQL locked, skipping those
        another transaction holds (`FOR UPDATE SKIP LOCKED`), so two workers never claim the same contact."""
        params = {"cid": campaign_id, "now": now, "limit": limit}
        if self.locks_rows:
            return [contact_from_row(row) for row in self.connection.execute(_DUE_LOCKED, params)]
        return [contact_from_row(row) for row in self._rows(_DUE, params)]

    def contacts_by_id(self, ids: Iterable[int]) -> dict[int, ContactRecord]:
        """Contacts by id; on PostgreSQL locked in id order until the transaction ends (no lost update)."""
        found: dict[int, ContactRecord] = {}
        for chunk in chunks(sorted(set(ids))):
            if self.locks_rows:
                rows: Iterable[Any] = self.connection.execute(_CONTACTS_BY_ID_LOCKED, {"ids": list(chunk)})
            else:
                rows = self._rows(_CONTACTS_BY_ID, {"ids": list(chunk)})
            found.update((row[0], contact_from_row(row)) for row in rows)
        return found

    def save_contacts(self, changes: Sequence[ContactChange], now: datetime) -> None:
        """Write new states (and extra columns, the same keys for every change) of many contacts."""
        if changes:
            self.save_contacts_at([(contact_id, state, extra, now) for contact_id, state, extra in changes])

    def save_contacts_at(self, changes: Sequence[tuple[int, ContactState, dict[str, Any], datetime]]) -> None:
        """`save_contacts` with each change's own `last_update` (the extra columns' keys the same for every one)."""
        if not changes:
            return
        extra_keys = tuple(sorted(changes[0][2]))
        if self.locks_rows:
            _pg_save_contacts(self.connection, extra_keys, changes)
            return
        statement = _SAVE_CONTACTS.get(extra_keys)
        if statement is None:
            columns: dict[str, Any] = {name: bindparam(name) for name in (*STATE_COLUMNS, *extra_keys, "last_update")}
            statement = _SAVE_CONTACTS[extra_keys] = (
                update(t.contacts).where(t.contacts.c.id == bindparam("_id")).values(**columns)
            )
        direct = self.direct()
        plan = direct.plan(statement) if direct is not None else None
        # The statement sets its columns in the table's order: the state's, then the extra ones, then last_update.
        extra_order = plan.names[len(STATE_COLUMNS) : -2] if plan is not None else ()
        if (
            direct is not None
            and plan is not None
            and plan.names == (*STATE_COLUMNS, *extra_order, "last_update", "_id")
            and sorted(extra_order) == list(extra_keys)
        ):
            # Rows straight in the statement's parameter order.
            status_text = _CONTACT_STATUS_TEXT
            pick = _extra_values(extra_order)
            direct.many_rows(
                plan,
                [
                    [
                        status_text[state.status],
                        state.retries,
                        state.failed_retries,
                        state.final,
                        state.due_at,
                        state.respond_by,
                        state.follow_up,
                        state.follow_up_attempts,
                        state.calls,
                        state.billed_seconds,
                        sorted(state.tags),
                        dict(state.extracted),
                        state.opted_out,
                        *pick(extra),
                        now,
                        contact_id,
                    ]
                    for contact_id, state, extra, now in changes
                ],
            )
            return
        self._many(
            statement,
            [
                {"_id": contact_id, **state_values(state), **extra, "last_update": now}
                for contact_id, state, extra, now in changes
            ],
        )

    def inflight_count(self, campaign_id: int) -> int:
        """Contacts in an attempt right now."""
        return int(self._rows(_INFLIGHT_COUNT, {"cid": campaign_id})[0][0])

    def cycle_open(self, campaign_id: int) -> bool:
        """True while any contact is not final, has a follow-up pending, or is in an attempt."""
        # Three indexed probes instead of one OR, which SQLite would answer with a scan.
        return any(self._rows(probe, {"cid": campaign_id}) for probe in _CYCLE_PROBES)

    def expired_attempts(self, campaign_id: int, now: datetime) -> list[tuple[str, str, str]]:
        """Attempts whose lease ran out (a worker died, a provider never answered): (subject, provider, external id)."""
        params = {"cid": campaign_id, "now": now}
        (campaign_channel,) = self._rows(_CHANNEL, params)[0]
        if campaign_channel == Channel.PHONE_CALL.value:
            rows, table, column, prefix = self._rows(_EXPIRED_CALLS, params), t.calls, "provider_call_id", "start"
            subject = "call"
        else:
            rows, table, column, prefix = (
                self._rows(_EXPIRED_MESSAGES, params),
                t.messages,
                "provider_message_id",
                "send",
            )
            subject = "message"
        expired: list[tuple[str, str, str]] = []
        never_started: list[dict[str, Any]] = []
        for provider, external_id, row_id, public_id in rows:
            if external_id is None:
                # Its provider never took it (a start still retrying): it fails under the id a refused start gets.
                external_id = f"{prefix}-{public_id}"
                never_started.append({"_id": row_id, "_pid": external_id})
            expired.append((subject, provider, external_id))
        if never_started:
            self.connection.execute(
                update(table)
                .where(table.c.id == bindparam("_id"))
                .values({column: bindparam("_pid"), "start_after": None}),
                never_started,
            )
        return expired

    def next_lease_expiry(self, campaign_id: int) -> datetime | None:
        """When the earliest lease of an attempt in flight runs out."""
        value = self._rows(_NEXT_LEASE_EXPIRY, {"cid": campaign_id})[0][0]
        return t.UTCDateTime().process_result_value(value, self.connection.dialect)

    def next_due_at(self, campaign_id: int) -> datetime | None:
        """The earliest attempt due among contacts not in one."""
        value = self._rows(_NEXT_DUE, {"cid": campaign_id})[0][0]
        return t.UTCDateTime().process_result_value(value, self.connection.dialect)

    def next_respond_by(self, campaign_id: int) -> datetime | None:
        """The earliest WhatsApp response deadline."""
        query = select(func.min(t.contacts.c.respond_by)).where(
            t.contacts.c.campaign_id == campaign_id, t.contacts.c.respond_by.is_not(None)
        )
        value = self.connection.execute(query).scalar()
        return t.UTCDateTime().process_result_value(value, self.connection.dialect)

    def overdue_responses(self, campaign_id: int, now: datetime) -> list[ContactRecord]:
        """Contacts whose WhatsApp response deadline has passed."""
        rows = self.connection.execute(
            select(*CONTACT_COLUMNS)
            .where(t.contacts.c.campaign_id == campaign_id, t.contacts.c.respond_by <= now)
            .order_by(t.contacts.c.respond_by, t.contacts.c.id)
        )
        return [contact_from_row(row) for row in rows]

    def all_contacts(self, campaign_id: int) -> Iterator[ContactRecord]:
        """Every contact of a campaign, by id (on PostgreSQL locked, in id order like `contacts_by_id`, since a cycle
        start rewrites them)."""
        statement = _ALL_CONTACTS.with_for_update() if self.locks_rows else _ALL_CONTACTS
        return map(contact_from_row, self._stream(statement, {"cid": campaign_id}))

    def suppress(self, business_id: int, number: str, now: datetime, source: str) -> None:
        """Put a number on the business's suppression list and close it in every campaign of the business."""
        self.connection.execute(
            dialect_insert(self.connection, t.suppressions)
            .values(business_id=business_id, contact=number, opted_out_at=now, source=source)
            .on_conflict_do_nothing()
        )
        campaign_ids = select(t.campaigns.c.id).where(t.campaigns.c.business_id == business_id)
        self.connection.execute(
            update(t.contacts)
            .where(
                t.contacts.c.contact == number,
                t.contacts.c.campaign_id.in_(campaign_ids),
                t.contacts.c.inflight_id.is_(None),
            )
            .values(opted_out=True, final=True, follow_up=False, due_at=None, respond_by=None, last_update=now)
        )

    # --- calls -------------------------------------------------------------------------------------------------


def _pg_save_contacts(
    connection: Connection,
    extra_keys: tuple[str, ...],
    changes: Sequence[tuple[int, ContactState, dict[str, Any], datetime]],
) -> None:
    rows = [
        [contact_id, *state_values(state).values(), *(extra[key] for key in extra_keys), now]
        for contact_id, state, extra, now in changes
    ]
    pg_batch.update(connection, t.contacts, ["id"], [*STATE_COLUMNS, *extra_keys, "last_update"], rows)
