"""Every query Herald runs, in one place. The engine, CLI, exports and (later) the API call these; none writes SQL.

Batches use executemany; idempotency (events, suppressions) is enforced by unique constraints, not by checks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    Engine,
    Integer,
    Text,
    and_,
    any_,
    bindparam,
    false,
    func,
    insert,
    select,
    true,
    type_coerce,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from herald.domain.campaign import CampaignConfig
from herald.domain.rules import ContactState
from herald.domain.statuses import CampaignStatus, Channel, ContactStatus
from herald.providers.base import ProviderEvent
from herald.store import pg_batch
from herald.store import schema as t
from herald.store.db import READ_ONLY, connect, write_gate
from herald.store.migrate import upgrade
from herald.store.records import CallRecord, Campaign, ContactRecord, MessageRecord

#: PostgreSQL channel on which workers LISTEN for new work (webhooks stored, campaigns activated, contacts added).
NOTIFY_CHANNEL = "herald_work"

#: A contact id, its new state, and other contact columns to set with it.
ContactChange = tuple[int, ContactState, dict[str, Any]]


class NotFound(LookupError):
    """No such row (or not visible to this business)."""


class Conflict(RuntimeError):
    """A conditional write found the row changed by another process (HTTP 409)."""


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


class Store:
    """The database behind Herald: a URL is all it needs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._gate = write_gate(engine)

    @classmethod
    def open(cls, url: str | None = None, *, migrate: bool = True, pool_size: int | None = None) -> Store:
        """Connect (and by default bring the schema up to date)."""
        store = cls(connect(url, pool_size=pool_size))
        if migrate:
            upgrade(store.engine)
        return store

    @contextmanager
    def tx(self) -> Iterator[Tx]:
        """One write transaction: committed when the block ends, rolled back if it raises.

        What it reads stays true until it commits: on SQLite it holds the database's write lock from its start (keep
        it short, and never call a provider inside it); on PostgreSQL the rows it will change are locked by the
        queries that read them (`lock_campaign`, `claim_*`, `FOR UPDATE`).
        """
        with self._gate or nullcontext(), self.engine.begin() as connection:
            yield Tx(connection)

    def write_gate(self) -> AbstractContextManager[None]:
        """Held around every write transaction (see `tx`): the SQLite file's write gate, or nothing."""
        return self._gate or nullcontext()

    @contextmanager
    def autocommit(self) -> Iterator[Tx]:
        """Statements that each commit on their own, for work whose every write is one statement (a webhook's
        events): on PostgreSQL no transaction is begun, which saves the BEGIN and COMMIT round trips; on SQLite it
        is one write transaction (`tx`), whose write lock makes that as cheap."""
        if self.engine.dialect.name != "postgresql":
            with self.tx() as tx:
                yield tx
            return
        with self.engine.connect() as connection:
            yield Tx(connection.execution_options(isolation_level="AUTOCOMMIT"))

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read-only transaction over one consistent snapshot, which never blocks writers (exports, reports)."""
        with self.engine.connect() as connection:
            connection = connection.execution_options(**{READ_ONLY: True})
            with connection.begin():
                yield Tx(connection)

    def close(self) -> None:
        """Release connections."""
        self.engine.dispose()


def _insert(connection: Connection, table: Any) -> Any:
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def inserted_call_view(call_id: int, row: Mapping[str, Any]) -> list[Any]:
    """What the engine reads back of a call it has just inserted (positions as in `_CALL_VIEW_FIELDS`), from the row given."""
    return [
        call_id,
        row["public_id"],
        row["campaign_id"],
        row["contact_id"],
        row["status"],
        row.get("answered_by"),
        row.get("started_at"),
        row.get("ended_at"),
        bool(row.get("follow_up", False)),
    ]


def event_payload(event: ProviderEvent) -> dict[str, Any]:
    """What the `payload` column keeps of an event: its data, and the message it answers (`ref`) when it names one."""
    return {"ref": event.ref, **event.data} if event.ref else dict(event.data)


def applied_event_values(event: ProviderEvent, now: datetime) -> list[Any]:
    """The `events` row of an event received and applied at `now`, as values in `_EVENT_KEYS` order."""
    return [
        event.provider,
        event.external_id,
        event.kind,
        event.occurred_at,
        now,
        event_payload(event),
        event.subject,
        event.attempt_id,
        now,
        0,
        "",
    ]


def event_row(
    event: ProviderEvent, now: datetime, *, applied_at: datetime | None, available_at: datetime | None = None
) -> dict[str, Any]:
    """The `events` row of an event received at `now`: applied already (`applied_at`), or waiting in the inbox until
    `available_at`."""
    return {
        "provider": event.provider,
        "external_id": event.external_id,
        "kind": event.kind,
        "occurred_at": event.occurred_at,
        "received_at": now,
        "payload": event_payload(event),
        "subject": event.subject,
        "attempt_id": event.attempt_id,
        "applied_at": applied_at,
        "available_at": available_at,
        "tries": 0,
        "pending_reason": "",
    }


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


_STATE_COLUMNS = tuple(state_values(ContactState()).keys())
_CONTACT_COLUMNS = [
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
    *(t.contacts.c[name] for name in _STATE_COLUMNS),
]


_CONTACT_STATUSES = {status.value: status for status in ContactStatus}
_CONTACT_STATUS_TEXT = {status: status.value for status in ContactStatus}


def _contact(row: Sequence[Any]) -> ContactRecord:
    # Positional, in the order of _CONTACT_COLUMNS (SQLAlchemy rows and DBAPI rows alike).
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
            tags=frozenset(row[20] or ()),
            extracted=dict(row[21] or {}),
            opted_out=bool(row[22]),
        ),
        inflight_id=row[7],
        current_message_id=row[8],
        attempts_in_cycle=row[9],
    )


_CAMPAIGN_COLUMNS = [*t.campaigns.c, t.businesses.c.public_id.label("business_public_id")]
#: Every campaign with its business's public id, in the order of _CAMPAIGN_COLUMNS (add a WHERE, a lock).
_CAMPAIGN_SELECT = select(*_CAMPAIGN_COLUMNS).join(t.businesses, t.businesses.c.id == t.campaigns.c.business_id)


_CONFIGS: dict[str, CampaignConfig] = {}


def _config(raw: Any) -> CampaignConfig:
    # Validating a campaign's configuration is costly and the engine reads campaigns every step: reuse it.
    key = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    found = _CONFIGS.get(key)
    if found is None:
        if len(_CONFIGS) >= 1024:
            _CONFIGS.clear()
        found = _CONFIGS[key] = CampaignConfig.model_validate(raw)
    return found


_RAW_CONFIGS: dict[str, CampaignConfig] = {}


def _config_text(raw: Any) -> CampaignConfig:
    # The configuration as stored text (the engine's campaigns query): no parsing at all once seen.
    if not isinstance(raw, str):
        return _config(raw)
    found = _RAW_CONFIGS.get(raw)
    if found is None:
        if len(_RAW_CONFIGS) >= 1024:
            _RAW_CONFIGS.clear()
        found = _RAW_CONFIGS[raw] = _config(json.loads(raw))
    return found


def campaign_config(raw: Any) -> CampaignConfig:
    """A campaign's configuration from its stored column, as text or decoded, validated once per process."""
    return _config_text(raw)


def _campaign(row: Sequence[Any], config: Callable[[Any], CampaignConfig] = _config) -> Campaign:
    # Positional, in the order of _CAMPAIGN_COLUMNS.
    return Campaign(
        id=row[0],
        business_id=row[1],
        name=row[2],
        channel=Channel(row[3]),
        status=CampaignStatus(row[4]),
        archived=bool(row[5]),
        config=config(row[6]),
        created_at=row[7],
        started_at=row[8],
        ended_at=row[9],
        cycle_iteration=row[10],
        cycle_last_iteration_at=row[11],
        next_cycle_at=row[12],
        agent_id=row[13],
        integration_id=row[14],
        business_public_id=row[15],
    )


def _chunks(items: Iterable[Any], size: int = 500) -> Iterator[list[Any]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


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
_CAMPAIGNS_BY_STATUS = (
    select(
        *(
            type_coerce(column, Text).label(column.name) if column.name == "config" else column
            for column in t.campaigns.c
        ),
        t.businesses.c.public_id.label("business_public_id"),
    )
    .join(t.businesses, t.businesses.c.id == t.campaigns.c.business_id)
    .where(t.campaigns.c.status.in_(bindparam("statuses", expanding=True)))
    .order_by(t.campaigns.c.id)
)
_INFLIGHT_COUNT = (
    select(func.count()).select_from(t.contacts).where(_c.campaign_id == bindparam("cid"), _c.inflight_id.is_not(None))
)
_DUE = (
    select(*_CONTACT_COLUMNS)
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
_ALL_CONTACTS = select(*_CONTACT_COLUMNS).where(_c.campaign_id == bindparam("cid")).order_by(_c.id)
# For "campaign_id = ? AND inflight_id IS NOT NULL" SQLite picks ix_contacts_campaign_order as readily as the partial
# ix_contacts_campaign_inflight (both start with campaign_id, and without ANALYZE statistics it cannot tell which is
# small), and the first reads every contact of the campaign, each step. On SQLite these name the partial index.
_INFLIGHT_INDEXED = frozenset(map(id, (_INFLIGHT_COUNT, _NEXT_LEASE_EXPIRY, _EXPIRED_CALLS, _EXPIRED_MESSAGES)))
_FROM_CONTACTS = re.compile(r"\bFROM contacts(?=\s+WHERE\b)")
_CONTACTS_BY_ID = select(*_CONTACT_COLUMNS).where(_c.id.in_(bindparam("ids", expanding=True)))
# PostgreSQL's: `= ANY(array)` where the others have an expanding IN, so that the statement's text is the same
# whatever the number of ids (compiled once by SQLAlchemy, converted and prepared once per connection by psycopg).
_INTEGERS = postgresql.ARRAY(Integer)
_TEXTS = postgresql.ARRAY(Text)
_CONTACTS_BY_ID_LOCKED = (
    select(*_CONTACT_COLUMNS).where(_c.id == any_(bindparam("ids", type_=_INTEGERS))).order_by(_c.id).with_for_update()
)
_DUE_LOCKED = _DUE.with_for_update(skip_locked=True)
_CYCLE_PROBES = tuple(
    select(_c.id).where(_c.campaign_id == bindparam("cid"), condition).limit(1)
    for condition in (_c.final == false(), _c.follow_up == true(), _c.inflight_id.is_not(None))
)
_CALLS_BY_PROVIDER_ID = select(
    t.calls.c.id,
    t.calls.c.public_id,
    t.calls.c.campaign_id,
    t.calls.c.contact_id,
    t.calls.c.status,
    t.calls.c.answered_by,
    t.calls.c.started_at,
    t.calls.c.ended_at,
    t.calls.c.follow_up,
    t.calls.c.provider_call_id,
).where(t.calls.c.provider == bindparam("provider"), t.calls.c.provider_call_id.in_(bindparam("ids", expanding=True)))
_CALLS_BY_PROVIDER_ID_LOCKED = (
    select(*_CALLS_BY_PROVIDER_ID.selected_columns)
    .where(
        t.calls.c.provider == bindparam("provider"),
        t.calls.c.provider_call_id == any_(bindparam("ids", type_=_TEXTS)),
    )
    .order_by(t.calls.c.id)
    .with_for_update()
)
_SUPPRESSED_AMONG = select(t.suppressions.c.contact).where(
    t.suppressions.c.business_id == bindparam("bid"), t.suppressions.c.contact.in_(bindparam("numbers", expanding=True))
)
_SUPPRESSED_AMONG_PG = select(t.suppressions.c.contact).where(
    t.suppressions.c.business_id == bindparam("bid"),
    t.suppressions.c.contact == any_(bindparam("numbers", type_=_TEXTS)),
)

# The export queries (SPEC §7): their rows are positional, in their select's column order.
_STREAM_BATCH = 5000
_k = t.calls.c
_m = t.messages.c
_STREAM_CONTACTS = (
    select(
        _c.external_id,
        _c.contact,
        _c.name,
        _c.context,
        _c.status,
        _c.retries,
        _c.calls,
        _c.billed_seconds,
        _c.last_update,
        _c.follow_up,
        _c.tags,
        _c.extracted,
    )
    .where(_c.campaign_id == bindparam("cid"))
    .order_by(_c.id)
)
_CALL_SELECT = select(
    _k.public_id,
    _c.contact.label("number_to"),
    _c.name.label("contact_name"),
    _k.type,
    _k.status,
    _k.answered_by,
    _k.created_at,
    _k.started_at,
    _k.ended_at,
    _k.ended_by,
    _k.ended_reason,
    _k.duration,
    _k.billed_seconds,
    _k.recording_url,
    _k.tags,
    _k.extracted,
).join(t.contacts, _c.id == _k.contact_id)
_STREAM_CALLS = _CALL_SELECT.where(_k.campaign_id == bindparam("cid")).order_by(_k.id)
_STREAM_CALLS_ANSWERED_BY = _CALL_SELECT.where(
    _k.campaign_id == bindparam("cid"), _k.answered_by == bindparam("answered_by")
).order_by(_k.id)
_MESSAGE_SELECT = (
    select(
        _c.external_id,
        _c.contact,
        t.sendouts.c.public_id.label("sendout_id"),
        _m.session_id,
        _m.sent_at,
        _m.delivered_at,
        _m.read_at,
        _m.opt_out_at,
        _m.error_code,
        _m.error_msg,
        _m.button_clicks,
        _m.link_clicks,
        _m.input_variables,
        _m.output_variables,
    )
    .join(t.contacts, _c.id == _m.contact_id)
    .join(t.sendouts, t.sendouts.c.id == _m.sendout_id)
)
_STREAM_MESSAGES = _MESSAGE_SELECT.where(_m.campaign_id == bindparam("cid")).order_by(_m.id)

_INSERT_CALLS = insert(t.calls)
_MAX_CALL_ID = "SELECT max(id) FROM calls"
_MAX_EVENT_ID = "SELECT max(id) FROM events"
_EVENT_KEYS_AFTER = "SELECT provider, external_id, kind FROM events WHERE id > ?"
_MAX_ROWID = 2**63 - 1
_CALL_IDS = select(t.calls.c.public_id, t.calls.c.id).where(t.calls.c.public_id.in_(bindparam("ids", expanding=True)))
_SAVE_CONTACTS: dict[tuple[str, ...], Any] = {}
_RECORD_EVENTS: dict[str, Any] = {}
_EVENT_KEYS = (
    "provider",
    "external_id",
    "kind",
    "occurred_at",
    "received_at",
    "payload",
    "subject",
    "attempt_id",
    "applied_at",
    "tries",
    "pending_reason",
)
_UPDATE_CALLS: dict[tuple[str, ...], Any] = {}
# Insert keys a remembered call can take as given (the others would read back as their column default).
_CALL_INSERT_KEYS = frozenset(
    {
        "public_id",
        "campaign_id",
        "contact_id",
        "provider",
        "provider_call_id",
        "type",
        "status",
        "answered_by",
        "created_at",
        "started_at",
        "ended_at",
        "follow_up",
        "cycle",
        "tags",
        "extracted",
    }
)
_CALL_VIEW_FIELDS = {"status": 4, "answered_by": 5, "started_at": 6, "ended_at": 7}


# --- running hot statements straight on the DBAPI cursor ---------------------------------------------------------
#
# SQLAlchemy spends more time per row (parameter dicts, processors, Row objects) than SQLite spends running the
# statement. On SQLite (pysqlite, qmark) the engine's hot statements are compiled once from the same Core
# statements, with SQLAlchemy's own bind and result processors, and run on the connection's DBAPI cursor; any
# other dialect runs them through SQLAlchemy as before.


@dataclass(frozen=True, slots=True)
class _Plan:
    """A Core statement compiled for SQLite: its SQL, parameter order, fixed values and value processors."""

    sql: str
    names: tuple[str, ...]
    fixed: dict[str, Any]
    processors: tuple[tuple[int, Any], ...]
    expanding: str | None
    expanding_processor: Any
    results: tuple[tuple[int, Any], ...]
    #: How `many_rows` converts each processed column: (index, kind, the type's own conversion).
    columns: tuple[tuple[int, int, Any], ...] = ()


_PLANS: dict[tuple[int, tuple[str, ...] | None], tuple[Any, _Plan | None]] = {}
_EXPANDED_SQL: dict[tuple[str, int], str] = {}


def _plan(statement: Any, dialect: Any, keys: tuple[str, ...] | None = None) -> _Plan | None:
    """`statement` compiled for the DBAPI (None if it needs something this shortcut does not do)."""
    cache_key = (id(statement), keys)
    cached = _PLANS.get(cache_key)
    if cached is not None and cached[0] is statement:
        return cached[1]
    plan = _compile(statement, dialect, keys)
    _PLANS[cache_key] = (statement, plan)
    return plan


def _compile(statement: Any, dialect: Any, keys: tuple[str, ...] | None) -> _Plan | None:
    compiled = statement.compile(dialect=dialect, column_keys=list(keys) if keys is not None else None)
    names = tuple(compiled.positiontup or ())
    fixed: dict[str, Any] = {}
    for column in compiled.insert_prefetch:
        default = column.default
        if default is None or not default.is_scalar:
            return None
        fixed[column.key] = default.arg
    if any(getattr(compiled, name, None) for name in ("postfetch", "update_prefetch", "returning")):
        return None
    expanding: str | None = None
    expanding_processor: Any = None
    processors: list[tuple[int, Any]] = []
    columns: list[tuple[int, int, Any]] = []
    for index, name in enumerate(names):
        bind = compiled.binds[name]
        if bind.expanding:
            if expanding is not None:
                return None
            expanding = name
            expanding_processor = _bind_processor(bind.type, dialect)
            continue
        if name not in fixed and not bind.required:
            fixed[name] = bind.effective_value
        processor = _bind_processor(bind.type, dialect)
        if processor is not None:
            processors.append((index, processor))
            columns.append((index, *_column_conversion(bind.type, dialect)))
    results: list[tuple[int, Any]] = []
    if statement.is_select:
        for index, column in enumerate(statement.selected_columns):
            processor = _result_processor(column.type, dialect)
            if processor is not None:
                results.append((index, processor))
    sql = compiled.string
    if id(statement) in _INFLIGHT_INDEXED:
        sql, count = _FROM_CONTACTS.subn("FROM contacts INDEXED BY ix_contacts_campaign_inflight", sql)
        assert count == 1, sql
    return _Plan(sql, names, fixed, tuple(processors), expanding, expanding_processor, tuple(results), tuple(columns))


def _memoized(processor: Any) -> Any:
    # The same instants recur across rows and steps (now, now + a delay): convert each one once.
    cache: dict[Any, Any] = {}

    def process(value: Any) -> Any:
        if value is None:
            return None
        found = cache.get(value)
        if found is None:
            if len(cache) >= 4096:
                cache.clear()
            found = cache[value] = processor(value)
        return found

    return process


def _json_bind(processor: Any) -> Any:
    # Most JSON values the engine writes are empty; their text is the serializer's, worked out once.
    empty_list, empty_dict = processor([]), processor({})

    def process(value: Any) -> Any:
        if not value:
            if type(value) is list:
                return empty_list
            if type(value) is dict:
                return empty_dict
        return processor(value)

    return process


def _json_result(processor: Any) -> Any:
    if processor("[]") != [] or processor("{}") != {}:
        return processor

    def process(value: Any) -> Any:
        if value == "[]":
            return []
        if value == "{}":
            return {}
        return processor(value)

    return process


def _sqlite_instant(processor: Any) -> Any:
    # SQLite stores UTCDateTime as "YYYY-MM-DD HH:MM:SS.ffffff" of the naive UTC time: for a UTC-aware value that
    # is its isoformat with microseconds, less the "+00:00"; anything else takes SQLAlchemy's way.
    def process(value: Any) -> Any:
        if value is not None and value.tzinfo is UTC:
            return value.isoformat(" ", "microseconds")[:-6]
        return processor(value)

    return process


def _bind_processor(type_: Any, dialect: Any) -> Any:
    processor = type_._cached_bind_processor(dialect)
    if processor is not None:
        if isinstance(type_, t.UTCDateTime) and dialect.name == "sqlite":
            return _memoized(_sqlite_instant(processor))
        if isinstance(type_, (t.UTCDateTime, Boolean)):
            return _memoized(processor)
        if isinstance(type_, JSON):
            return _json_bind(processor)
    return processor


# Kinds of column conversion `many_rows` runs inline, a column of many rows at a time: a call per value (the
# processors above) cost more than the conversions themselves in the engine's batches of thousands of rows.
_GIVEN, _INSTANT, _FLAG, _DOCUMENT = range(4)
#: Text of instants already converted (the same ones recur across rows and batches: now, now + a delay).
_INSTANT_TEXT: dict[datetime, str] = {}


def _column_conversion(type_: Any, dialect: Any) -> tuple[int, Any]:
    """How `many_rows` converts values of `type_`: a kind, and the type's own bind processor (not memoized)."""
    processor = type_._cached_bind_processor(dialect)
    if isinstance(type_, t.UTCDateTime) and dialect.name == "sqlite":
        return _INSTANT, _sqlite_instant(processor)
    if isinstance(type_, Boolean) and processor is not None and processor(True) == 1 and processor(False) == 0:
        return _FLAG, processor
    if isinstance(type_, JSON):
        if dialect._json_serializer is None and c_make_encoder is not None:
            return _DOCUMENT, _json_bind(processor)
        return _GIVEN, _json_bind(processor)
    return _GIVEN, processor


def _convert_column(rows: list[list[Any]], index: int, kind: int, processor: Any) -> None:
    """Convert column `index` of every row in place, as `processor` would value by value."""
    if kind == _INSTANT:
        memo = _INSTANT_TEXT
        if len(memo) >= 65536:
            memo.clear()
        known = memo.get
        for row in rows:
            value = row[index]
            if value is not None:
                # Aware instants that are equal convert to the same naive UTC text, whatever their zone.
                text = known(value)
                if text is None:
                    # As `_sqlite_instant`, without a call for the usual UTC-aware value.
                    if value.tzinfo is UTC:
                        text = memo[value] = value.isoformat(" ", "microseconds")[:-6]
                    else:
                        text = memo[value] = processor(value)
                row[index] = text
    elif kind == _FLAG:
        # sqlite3 stores a bool as the integer the processor would give (True is 1): only others go through it.
        for row in rows:
            value = row[index]
            if value is not None and type(value) is not bool:
                row[index] = processor(value)
    elif kind == _DOCUMENT:
        # Lists and dicts go straight to the C encoder that `json.dumps` (SQLAlchemy's serializer here) makes for
        # each call with its default settings; one encoder for the column saves that per value. Anything else (None,
        # empty ones, other types) takes the processor's way.
        encode = c_make_encoder(
            {}, json.JSONEncoder().default, encode_basestring_ascii, None, ": ", ", ", False, False, True
        )
        for row in rows:
            value = row[index]
            if value and (type(value) is dict or type(value) is list):
                row[index] = "".join(encode(value, 0))
            else:
                row[index] = processor(value)
    else:
        for row in rows:
            row[index] = processor(row[index])


def _result_processor(type_: Any, dialect: Any) -> Any:
    processor = type_._cached_result_processor(dialect, None)
    if processor is not None:
        if isinstance(type_, t.UTCDateTime):
            return _memoized(processor)
        if isinstance(type_, JSON):
            return _json_result(processor)
    return processor


def _bucket(size: int) -> int:
    # IN lists are padded to a few sizes so that SQLite's statement cache keeps them prepared.
    bucket = 8
    while bucket < size:
        bucket *= 2
    return bucket


def _converted(rows: Sequence[Any], results: tuple[tuple[int, Any], ...]) -> Iterable[Sequence[Any]]:
    """Fetched rows with the plan's result processors applied (as they come when there are none)."""
    if not results:
        return rows
    converted = []
    for raw in rows:
        row = list(raw)
        for index, processor in results:
            row[index] = processor(row[index])
        converted.append(row)
    return converted


class _Direct:
    """Runs compiled plans on one DBAPI connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.cursor = connection.connection.cursor()

    def plan(self, statement: Any, keys: tuple[str, ...] | None = None) -> _Plan | None:
        return _plan(statement, self.dialect, keys)

    def values(self, plan: _Plan, params: dict[str, Any]) -> list[Any]:
        fixed = plan.fixed
        row = [params[name] if name in params else fixed[name] for name in plan.names]
        for index, processor in plan.processors:
            row[index] = processor(row[index])
        return row

    def many(self, plan: _Plan, params: Sequence[dict[str, Any]]) -> None:
        names = plan.names
        if plan.fixed:
            fixed = plan.fixed
            rows = [[item[name] if name in item else fixed[name] for name in names] for item in params]
        else:
            rows = [[item[name] for name in names] for item in params]
        self.many_rows(plan, rows)

    def many_rows(self, plan: _Plan, rows: list[list[Any]]) -> None:
        """Run `plan` once per row of values given in its parameter order (processed in place)."""
        for index, kind, processor in plan.columns:
            _convert_column(rows, index, kind, processor)
        self.cursor.executemany(plan.sql, rows)

    def stream(self, plan: _Plan, params: dict[str, Any], size: int) -> Iterator[Sequence[Any]]:
        """The rows of a plan without an expanding parameter, fetched in batches on a cursor of their own."""
        assert plan.expanding is None
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(plan.sql, self.values(plan, params))
            while batch := cursor.fetchmany(size):
                yield from _converted(batch, plan.results)
        finally:
            cursor.close()

    def rows(self, plan: _Plan, params: dict[str, Any]) -> list[Any]:
        sql = plan.sql
        values = self.values(plan, params)
        if plan.expanding is not None:
            items = list(params[plan.expanding])
            if not items:
                return []
            size = _bucket(len(items))
            items.extend(items[-1:] * (size - len(items)))
            if plan.expanding_processor is not None:
                items = [plan.expanding_processor(item) for item in items]
            position = plan.names.index(plan.expanding)
            values[position : position + 1] = items
            key = (sql, size)
            expanded = _EXPANDED_SQL.get(key)
            if expanded is None:
                token = f"__[POSTCOMPILE_{plan.expanding}]"
                expanded = _EXPANDED_SQL[key] = sql.replace(token, ", ".join("?" * size))
            sql = expanded
        return list(_converted(self.cursor.execute(sql, values).fetchall(), plan.results))


class Tx:
    """Queries inside one transaction."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self._direct: _Direct | None = None
        self._direct_checked = False
        # Calls this transaction inserted or read, as they stand after its own updates: id -> the values of
        # _CALLS_BY_PROVIDER_ID without the provider id, and (provider, provider id) -> id. A call's events mostly
        # arrive within the few steps that share a transaction, so they find it here instead of in the table.
        self._calls: dict[int, list[Any]] = {}
        self._call_ids: dict[tuple[str, str], int] = {}

    def direct(self) -> _Direct | None:
        """The DBAPI shortcut for hot statements, or None where SQLAlchemy runs them (not SQLite/pysqlite)."""
        if not self._direct_checked:
            self._direct_checked = True
            dialect = self.connection.dialect
            if dialect.name == "sqlite" and dialect.driver == "pysqlite" and dialect.paramstyle == "qmark":
                self._direct = _Direct(self.connection)
        return self._direct

    def _rows(self, statement: Any, params: dict[str, Any]) -> Sequence[Any]:
        direct = self.direct()
        plan = direct.plan(statement) if direct is not None else None
        if direct is not None and plan is not None:
            return direct.rows(plan, params)
        return list(self.connection.execute(statement, params))

    def _many(self, statement: Any, params: Sequence[dict[str, Any]], keys: tuple[str, ...] | None = None) -> None:
        direct = self.direct()
        plan = direct.plan(statement, keys) if direct is not None else None
        if direct is not None and plan is not None:
            direct.many(plan, params)
        else:
            self.connection.execute(statement, params)

    # --- businesses --------------------------------------------------------------------------------------------

    def ensure_business(self, name: str, public_id: str, now: datetime) -> int:
        """The id of the business called `name`, created with `public_id` if missing."""
        found = self.connection.execute(select(t.businesses.c.id).where(t.businesses.c.name == name)).scalar()
        if found is not None:
            return int(found)
        result = self.connection.execute(
            insert(t.businesses).values(name=name, public_id=public_id, created_at=now).returning(t.businesses.c.id)
        )
        return int(result.scalar_one())

    # --- campaigns ---------------------------------------------------------------------------------------------

    def create_campaign(self, business_id: int, config: CampaignConfig, now: datetime) -> int:
        """Store a new campaign (status `pending`) and return its id."""
        result = self.connection.execute(
            insert(t.campaigns)
            .values(
                business_id=business_id,
                name=config.name,
                channel=config.channel.value,
                status=CampaignStatus.PENDING.value,
                archived=False,
                config=config.model_dump(mode="json"),
                created_at=now,
                cycle_iteration=1,
            )
            .returning(t.campaigns.c.id)
        )
        return int(result.scalar_one())

    def campaign(self, campaign_id: int) -> Campaign:
        """One campaign; NotFound if there is none."""
        row = self.connection.execute(_CAMPAIGN_SELECT.where(t.campaigns.c.id == campaign_id)).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return _campaign(row)

    def lock_campaign(self, campaign_id: int) -> Campaign:
        """One campaign, locked until the transaction ends: on PostgreSQL `FOR UPDATE`, so claims, cycle changes and
        a user's pause of one campaign happen one after the other; on SQLite the write transaction holds the lock."""
        query = _CAMPAIGN_SELECT.where(t.campaigns.c.id == campaign_id)
        if self.connection.dialect.name == "postgresql":
            query = query.with_for_update(of=t.campaigns)
        row = self.connection.execute(query).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return _campaign(row)

    def campaigns(self, statuses: Iterable[CampaignStatus] | None = None, *, lock: bool = False) -> list[Campaign]:
        """Campaigns, oldest first, optionally only those in `statuses` (with `lock`, locked as `lock_campaign`)."""
        if statuses is not None:
            if lock and self.connection.dialect.name == "postgresql":
                rows = self.connection.execute(
                    _CAMPAIGNS_BY_STATUS.with_for_update(of=t.campaigns),
                    {"statuses": [status.value for status in statuses]},
                ).all()
            else:
                rows = self._rows(_CAMPAIGNS_BY_STATUS, {"statuses": [status.value for status in statuses]})
            return [_campaign(row, _config_text) for row in rows]
        return [_campaign(row) for row in self.connection.execute(_CAMPAIGN_SELECT.order_by(t.campaigns.c.id))]

    def update_campaign(
        self, campaign_id: int, expected: CampaignStatus, expected_cycle: int | None = None, **values: Any
    ) -> None:
        """Set campaign columns if the campaign is still in `expected` status (and cycle); Conflict otherwise, so a
        change made by another process (a pause, a cycle start) is never overwritten."""
        if "status" in values and isinstance(values["status"], CampaignStatus):
            values["status"] = values["status"].value
        condition = and_(t.campaigns.c.id == campaign_id, t.campaigns.c.status == expected.value)
        if expected_cycle is not None:
            condition = and_(condition, t.campaigns.c.cycle_iteration == expected_cycle)
        result = self.connection.execute(update(t.campaigns).where(condition).values(**values))
        if result.rowcount != 1:
            raise Conflict(f"campaign {campaign_id} changed meanwhile (it is no longer {expected.value})")

    def log(self, campaign_id: int, kind: str, data: dict[str, Any], now: datetime) -> None:
        """Append to the campaign log (status changes, cycle ends): the outbox for outgoing webhooks."""
        self.connection.execute(
            insert(t.campaign_log).values(campaign_id=campaign_id, kind=kind, data=data, occurred_at=now)
        )

    def campaign_log(self, campaign_id: int) -> list[tuple[str, datetime, dict[str, Any]]]:
        """The campaign's log, in order."""
        rows = self.connection.execute(
            select(t.campaign_log.c.kind, t.campaign_log.c.occurred_at, t.campaign_log.c.data)
            .where(t.campaign_log.c.campaign_id == campaign_id)
            .order_by(t.campaign_log.c.id)
        )
        return [(row.kind, row.occurred_at, dict(row.data)) for row in rows]

    # --- contacts ----------------------------------------------------------------------------------------------

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
        for chunk in _chunks(numbers):
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
        for chunk in _chunks(contacts, _IMPORT_CHUNK):
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

    def notify_workers(self) -> None:
        """Wake waiting workers when this transaction commits (PostgreSQL NOTIFY; SQLite workers poll)."""
        if self.connection.dialect.name == "postgresql":
            self.connection.exec_driver_sql(f"NOTIFY {NOTIFY_CHANNEL}")

    @property
    def locks_rows(self) -> bool:
        """True where rows are locked one by one (PostgreSQL); SQLite's write transaction locks the whole database."""
        return self.connection.dialect.name == "postgresql"

    def due_contacts(self, campaign_id: int, now: datetime, limit: int) -> list[ContactRecord]:
        """Contacts owed an attempt by `now` and not in one, earliest due first; on PostgreSQL locked, skipping those
        another transaction holds (`FOR UPDATE SKIP LOCKED`), so two workers never claim the same contact."""
        params = {"cid": campaign_id, "now": now, "limit": limit}
        if self.locks_rows:
            return [_contact(row) for row in self.connection.execute(_DUE_LOCKED, params)]
        return [_contact(row) for row in self._rows(_DUE, params)]

    def contacts_by_id(self, ids: Iterable[int]) -> dict[int, ContactRecord]:
        """Contacts by id; on PostgreSQL locked in id order until the transaction ends (no lost update)."""
        found: dict[int, ContactRecord] = {}
        for chunk in _chunks(sorted(set(ids))):
            if self.locks_rows:
                rows: Iterable[Any] = self.connection.execute(_CONTACTS_BY_ID_LOCKED, {"ids": list(chunk)})
            else:
                rows = self._rows(_CONTACTS_BY_ID, {"ids": list(chunk)})
            found.update((row[0], _contact(row)) for row in rows)
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
            columns: dict[str, Any] = {name: bindparam(name) for name in (*_STATE_COLUMNS, *extra_keys, "last_update")}
            statement = _SAVE_CONTACTS[extra_keys] = (
                update(t.contacts).where(t.contacts.c.id == bindparam("_id")).values(**columns)
            )
        direct = self.direct()
        plan = direct.plan(statement) if direct is not None else None
        # The statement sets its columns in the table's order: the state's, then the extra ones, then last_update.
        extra_order = plan.names[len(_STATE_COLUMNS) : -2] if plan is not None else ()
        if (
            direct is not None
            and plan is not None
            and plan.names == (*_STATE_COLUMNS, *extra_order, "last_update", "_id")
            and sorted(extra_order) == list(extra_keys)
        ):
            # Rows straight in the statement's parameter order.
            status_text = _CONTACT_STATUS_TEXT
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
                        *(extra[key] for key in extra_order),
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
            select(*_CONTACT_COLUMNS)
            .where(t.contacts.c.campaign_id == campaign_id, t.contacts.c.respond_by <= now)
            .order_by(t.contacts.c.respond_by, t.contacts.c.id)
        )
        return [_contact(row) for row in rows]

    def all_contacts(self, campaign_id: int) -> Iterator[ContactRecord]:
        """Every contact of a campaign, by id (on PostgreSQL locked, in id order like `contacts_by_id`, since a cycle
        start rewrites them)."""
        statement = _ALL_CONTACTS.with_for_update() if self.locks_rows else _ALL_CONTACTS
        return map(_contact, self._stream(statement, {"cid": campaign_id}))

    def suppress(self, business_id: int, number: str, now: datetime, source: str) -> None:
        """Put a number on the business's suppression list and close it in every campaign of the business."""
        self.connection.execute(
            _insert(self.connection, t.suppressions)
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

    def insert_calls(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert calls, returning their ids in the order given."""
        if not rows:
            return []
        if self.locks_rows:
            ordered = _pg_insert_calls(self.connection, rows)
            self._remember_calls(rows, ordered)
            return ordered
        direct = self.direct()
        plan = direct.plan(_INSERT_CALLS, tuple(rows[0])) if direct is not None else None
        if direct is not None and plan is not None:
            # One executemany. Without AUTOINCREMENT SQLite gives each new row the largest id so far plus one (until
            # the largest possible id), and from its first insert this transaction holds the write lock, so the new
            # ids are the largest ones right after it, in order. (Read before the insert, the largest id could be
            # outside the transaction: pysqlite only begins one at the first write.)
            direct.many(plan, rows)
            largest = direct.cursor.execute(_MAX_CALL_ID).fetchone()[0]
            if largest < _MAX_ROWID:
                new_ids = list(range(largest - len(rows) + 1, largest + 1))
                self._remember_calls(rows, new_ids)
                return new_ids
        else:
            # A plain executemany and a lookup by the unique public id beat an ordered RETURNING, which SQLite
            # can only do row by row.
            self.connection.execute(_INSERT_CALLS, rows)
        ids: dict[str, int] = {}
        public_ids = [row["public_id"] for row in rows]
        for chunk in _chunks(public_ids):
            ids.update((row[0], row[1]) for row in self.connection.execute(_CALL_IDS, {"ids": list(chunk)}))
        ordered = [ids[public_id] for public_id in public_ids]
        self._remember_calls(rows, ordered)
        return ordered

    def _remember_calls(self, rows: Sequence[dict[str, Any]], ids: Sequence[int]) -> None:
        for row, call_id in zip(rows, ids, strict=True):
            provider_call_id = row.get("provider_call_id")
            # Only rows whose read-back values are the ones given (the rest come from column defaults).
            if provider_call_id is None or not row.keys() <= _CALL_INSERT_KEYS:
                continue
            self._calls[call_id] = inserted_call_view(call_id, row)
            self._call_ids[(row["provider"], provider_call_id)] = call_id

    def set_call_provider_ids(self, pairs: Sequence[tuple[int, str]]) -> None:
        """Record each call's provider id."""
        if pairs:
            self._calls.clear()
            self._call_ids.clear()
            self.connection.execute(
                update(t.calls).where(t.calls.c.id == bindparam("_id")).values(provider_call_id=bindparam("pid")),
                [{"_id": call_id, "pid": provider_id} for call_id, provider_id in pairs],
            )

    def calls_by_provider_ids(self, provider: str, provider_ids: Iterable[str]) -> dict[str, CallRecord]:
        """Calls by their provider id."""
        known = self._calls
        known_ids = self._call_ids
        views: dict[str, list[Any]] = {}
        missing: list[str] = []
        for provider_id in sorted(set(provider_ids)):
            call_id = known_ids.get((provider, provider_id))
            if call_id is None:
                missing.append(provider_id)
            else:
                views[provider_id] = known[call_id]
        for chunk in _chunks(missing):
            params = {"provider": provider, "ids": list(chunk)}
            # On PostgreSQL two workers may apply events of one call at once: the second waits for the first.
            rows = (
                self.connection.execute(_CALLS_BY_PROVIDER_ID_LOCKED, params)
                if self.locks_rows
                else self._rows(_CALLS_BY_PROVIDER_ID, params)
            )
            for row in rows:
                view = [*row[:8], bool(row[8])]
                known[row[0]] = view
                known_ids[(provider, row[9])] = row[0]
                views[row[9]] = view
        # In provider id order, as the table's unique index returned them when every call was read from it.
        return {
            provider_id: CallRecord(
                id=view[0],
                public_id=view[1],
                campaign_id=view[2],
                contact_id=view[3],
                status=view[4],
                answered_by=view[5],
                started_at=view[6],
                ended_at=view[7],
                follow_up=view[8],
            )
            for provider_id, view in sorted(views.items())
        }

    def update_calls(self, records: Sequence[CallRecord]) -> None:
        """Write the changed values of calls; records sharing the same changed keys go in one batch."""
        known = self._calls
        for record in records:
            if record.values:
                view = known.get(record.id)
                if view is not None:
                    for key, index in _CALL_VIEW_FIELDS.items():
                        if key in record.values:
                            view[index] = record.values[key]
        self.write_call_values([(record.id, record.values) for record in records if record.values])

    def write_call_values(self, changes: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Set columns of calls by id; changes with the same keys go in one batch."""
        if self.locks_rows:
            _pg_write_call_values(self.connection, changes)
            return
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for call_id, values in changes:
            groups.setdefault(tuple(sorted(values)), []).append({"_id": call_id, **values})
        for keys, params in groups.items():
            statement = _UPDATE_CALLS.get(keys)
            if statement is None:
                statement = _UPDATE_CALLS[keys] = (
                    update(t.calls)
                    .where(t.calls.c.id == bindparam("_id"))
                    .values({key: bindparam(key) for key in keys})
                )
            self._many(statement, params)

    # --- messages ----------------------------------------------------------------------------------------------

    def sendout(self, campaign_id: int, cycle: int, wave: int, public_id: str, now: datetime) -> int:
        """The id of the campaign's send wave `wave` of cycle `cycle`, created if new."""
        query = select(t.sendouts.c.id).where(
            t.sendouts.c.campaign_id == campaign_id, t.sendouts.c.cycle == cycle, t.sendouts.c.wave == wave
        )
        found = self.connection.execute(query).scalar()
        if found is not None:
            return int(found)
        result = self.connection.execute(
            insert(t.sendouts)
            .values(campaign_id=campaign_id, cycle=cycle, wave=wave, public_id=public_id, created_at=now)
            .returning(t.sendouts.c.id)
        )
        return int(result.scalar_one())

    def insert_messages(self, rows: Sequence[dict[str, Any]]) -> list[int]:
        """Insert messages, returning their ids in the order given."""
        if not rows:
            return []
        statement = insert(t.messages).returning(t.messages.c.id, sort_by_parameter_order=True)
        return [row[0] for row in self.connection.execute(statement, rows)]

    def messages_since(self, campaign_id: int, since: datetime) -> int:
        """Messages the campaign created since `since` (for the daily message limit)."""
        query = (
            select(func.count())
            .select_from(t.messages)
            .where(t.messages.c.campaign_id == campaign_id, t.messages.c.created_at >= since)
        )
        return int(self.connection.execute(query).scalar_one())

    def set_message_results(self, rows: Sequence[dict[str, Any]]) -> None:
        """Record provider ids or send errors of messages (keys: _id, provider_message_id, error_code, error_msg)."""
        if rows:
            self.connection.execute(
                update(t.messages)
                .where(t.messages.c.id == bindparam("_id"))
                .values(
                    provider_message_id=bindparam("provider_message_id"),
                    error_code=bindparam("error_code"),
                    error_msg=bindparam("error_msg"),
                ),
                rows,
            )

    def messages_by_provider_ids(self, provider: str, provider_ids: Iterable[str]) -> dict[str, MessageRecord]:
        """Messages by their provider id."""
        found: dict[str, MessageRecord] = {}
        m = t.messages.c
        for chunk in _chunks(sorted(set(provider_ids))):
            query = select(t.messages).where(m.provider == provider, m.provider_message_id.in_(chunk))
            if self.locks_rows:
                query = query.order_by(m.id).with_for_update()
            rows = self.connection.execute(query)
            for row in rows:
                found[row.provider_message_id] = MessageRecord(
                    id=row.id,
                    campaign_id=row.campaign_id,
                    contact_id=row.contact_id,
                    provider_message_id=row.provider_message_id,
                    sent_at=row.sent_at,
                    delivered_at=row.delivered_at,
                    read_at=row.read_at,
                    opt_out_at=row.opt_out_at,
                    error_code=row.error_code,
                    error_msg=row.error_msg,
                    button_clicks=list(row.button_clicks or []),
                    link_clicks=list(row.link_clicks or []),
                    output_variables=dict(row.output_variables or {}),
                )
        return found

    def update_messages(self, records: Sequence[MessageRecord]) -> None:
        """Write back messages changed by events."""
        changed = [record for record in records if record.changed]
        if changed:
            keys = (
                "sent_at",
                "delivered_at",
                "read_at",
                "opt_out_at",
                "error_code",
                "error_msg",
                "button_clicks",
                "link_clicks",
                "output_variables",
            )
            self.connection.execute(
                update(t.messages)
                .where(t.messages.c.id == bindparam("_id"))
                .values({key: bindparam(key) for key in keys}),
                [{"_id": record.id, **{key: getattr(record, key) for key in keys}} for record in changed],
            )

    # --- events ------------------------------------------------------------------------------------------------

    def record_events(self, events: Sequence[ProviderEvent], now: datetime) -> list[ProviderEvent]:
        """Store events once each (unique provider, external id, kind) as applied by the caller in this
        transaction; return only those not seen before. (Events received for a worker to apply go through
        `herald.store.inbox.add`.)"""
        unique: dict[tuple[str, str, str], ProviderEvent] = {}
        for event in events:
            unique.setdefault(event.key, event)
        if not unique:
            return []
        direct = self.direct()
        if direct is not None:
            plan = self._event_plan(direct)
            # Every column is given (none left to a default), so rows go straight in the statement's order.
            if plan is not None:
                rows = [applied_event_values(event, now) for event in unique.values()]
                # One executemany; its row count says how many were new. From its first insert this transaction
                # holds the write lock and each new row takes the largest id so far plus one (no AUTOINCREMENT), so
                # when some were already stored, the new ones are those with the largest ids right after it.
                cursor = direct.cursor
                direct.many_rows(plan, rows)
                added = cursor.rowcount
                if added == len(rows):
                    return list(unique.values())
                if added == 0:
                    return []
                largest = cursor.execute(_MAX_EVENT_ID).fetchone()[0]
                if largest >= _MAX_ROWID:
                    # From there SQLite picks ids at random and the new rows cannot be told from the old ones.
                    raise RuntimeError("the events table has reached SQLite's largest rowid")
                cursor.execute(_EVENT_KEYS_AFTER, (largest - added,))
                inserted = {(row[0], row[1], row[2]) for row in cursor.fetchall()}
                return [event for key, event in unique.items() if key in inserted]
        params = [event_row(event, now, applied_at=now) for event in unique.values()]
        dialect = self.connection.dialect.name
        statement = _RECORD_EVENTS.get(dialect)
        if statement is None:
            statement = _RECORD_EVENTS[dialect] = (
                _insert(self.connection, t.events)
                .on_conflict_do_nothing(index_elements=["provider", "external_id", "kind"])
                .returning(t.events.c.provider, t.events.c.external_id, t.events.c.kind)
            )
        inserted = {(row[0], row[1], row[2]) for row in self.connection.execute(statement, params)}
        return [event for key, event in unique.items() if key in inserted]

    @staticmethod
    def _event_plan(direct: _Direct) -> _Plan | None:
        statement = _RECORD_EVENTS.get("direct")
        if statement is None:
            statement = _RECORD_EVENTS["direct"] = sqlite.insert(t.events).on_conflict_do_nothing(
                index_elements=["provider", "external_id", "kind"]
            )
        plan = direct.plan(statement, _EVENT_KEYS)
        return plan if plan is not None and plan.names == _EVENT_KEYS else None

    def insert_event_rows(self, rows: list[list[Any]]) -> None:
        """Store events known to be new and applied, as rows of values in `_EVENT_KEYS` order (SQLite only)."""
        direct = self.direct()
        plan = self._event_plan(direct) if direct is not None else None
        if direct is None or plan is None:
            raise RuntimeError("insert_event_rows needs SQLite's direct path")
        direct.many_rows(plan, rows)

    def event_count(self) -> int:
        """Events stored."""
        return int(self.connection.execute(select(func.count()).select_from(t.events)).scalar_one())

    # --- exports (streamed) ------------------------------------------------------------------------------------

    def _stream(self, statement: Any, params: dict[str, Any]) -> Iterator[Sequence[Any]]:
        """Rows of a read-only query, fetched in batches (positional; memory flat in the number of rows)."""
        direct = self.direct()
        plan = direct.plan(statement) if direct is not None else None
        if direct is not None and plan is not None:
            # Exports and cycle starts read every row: the DBAPI cursor with the plan's cached conversions skips
            # SQLAlchemy's per-row work.
            return direct.stream(plan, params, _STREAM_BATCH)
        # Per statement: Connection.execution_options would switch the whole connection to server-side cursors.
        return iter(self.connection.execute(statement, params, execution_options={"yield_per": _STREAM_BATCH}))

    def stream_contacts(self, campaign_id: int) -> Iterator[Sequence[Any]]:
        """Every contact row of a campaign in id order (columns of `_STREAM_CONTACTS`)."""
        return self._stream(_STREAM_CONTACTS, {"cid": campaign_id})

    def stream_calls(self, campaign_id: int, answered_by: str | None = None) -> Iterator[Sequence[Any]]:
        """Every call of a campaign (or those answered by `answered_by`) in id order (columns of `_CALL_SELECT`)."""
        if answered_by is None:
            return self._stream(_STREAM_CALLS, {"cid": campaign_id})
        return self._stream(_STREAM_CALLS_ANSWERED_BY, {"cid": campaign_id, "answered_by": answered_by})

    def stream_messages(self, campaign_id: int) -> Iterator[Sequence[Any]]:
        """Every WhatsApp message of a campaign with its contact and sendout, in id order (columns of
        `_MESSAGE_SELECT`)."""
        return self._stream(_STREAM_MESSAGES, {"cid": campaign_id})

    def latest_activity(self) -> datetime | None:
        """The latest instant recorded anywhere (campaign log, calls, messages): virtual clocks start after it."""
        candidates = [
            select(func.max(t.campaign_log.c.occurred_at)),
            select(func.max(t.calls.c.ended_at)),
            select(func.max(t.messages.c.created_at)),
            select(func.max(t.events.c.occurred_at)),
        ]
        values = [
            t.UTCDateTime().process_result_value(self.connection.execute(q).scalar(), self.connection.dialect)
            for q in candidates
        ]
        present = [value for value in values if value is not None]
        return max(present) if present else None


# --- PostgreSQL: a batch of row writes as one statement (herald.store.pg_batch) ----------------------------------


def _pg_save_contacts(
    connection: Connection,
    extra_keys: tuple[str, ...],
    changes: Sequence[tuple[int, ContactState, dict[str, Any], datetime]],
) -> None:
    rows = [
        [contact_id, *state_values(state).values(), *(extra[key] for key in extra_keys), now]
        for contact_id, state, extra, now in changes
    ]
    pg_batch.update(connection, t.contacts, ["id"], [*_STATE_COLUMNS, *extra_keys, "last_update"], rows)


def _pg_write_call_values(connection: Connection, changes: Iterable[tuple[int, dict[str, Any]]]) -> None:
    # One statement whatever columns each call's change sets (an executemany would be one per row).
    pg_batch.update_sparse(connection, t.calls, "id", list(changes))


def _pg_insert_calls(connection: Connection, rows: Sequence[dict[str, Any]]) -> list[int]:
    keys = tuple(rows[0])
    ids = dict(
        pg_batch.insert(connection, t.calls, keys, [[row[key] for key in keys] for row in rows], ("public_id", "id"))
    )
    return [ids[row["public_id"]] for row in rows]
