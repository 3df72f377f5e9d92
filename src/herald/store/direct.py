"""Running the engine's hot statements straight on the DBAPI cursor (SQLite through pysqlite only).

SQLAlchemy spends more time per row (parameter dicts, processors, Row objects) than SQLite spends running the
statement. On SQLite (pysqlite, qmark) the engine's hot statements are compiled once from the same Core statements,
with SQLAlchemy's own bind and result processors, and run on the connection's DBAPI cursor; any other dialect runs
them through SQLAlchemy (`TxBase` decides which).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import JSON, Boolean, Connection

from herald.store import schema as t

#: SQLite's largest rowid: past it new rows take random ids, and "the largest id so far plus one" no longer holds.
MAX_ROWID = 2**63 - 1
#: Statements (by id) whose SQL names an index of their table on SQLite: id -> (table, index).
_INDEX_HINTS: dict[int, tuple[str, str]] = {}


def name_index(table: str, index: str, *statements: Any) -> None:
    """Make SQLite use `index` for `table` in `statements` (`INDEXED BY`), where its planner, without statistics,
    would as readily pick a worse one."""
    for statement in statements:
        _INDEX_HINTS[id(statement)] = (table, index)


@dataclass(frozen=True, slots=True)
class Plan:
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


_PLANS: dict[tuple[int, tuple[str, ...] | None], tuple[Any, Plan | None]] = {}
_EXPANDED_SQL: dict[tuple[str, int], str] = {}


def compiled_plan(statement: Any, dialect: Any, keys: tuple[str, ...] | None = None) -> Plan | None:
    """`statement` compiled for the DBAPI (None if it needs something this shortcut does not do)."""
    cache_key = (id(statement), keys)
    cached = _PLANS.get(cache_key)
    if cached is not None and cached[0] is statement:
        return cached[1]
    plan = _compile(statement, dialect, keys)
    _PLANS[cache_key] = (statement, plan)
    return plan


def _compile(statement: Any, dialect: Any, keys: tuple[str, ...] | None) -> Plan | None:
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
    hint = _INDEX_HINTS.get(id(statement))
    if hint is not None:
        table, index_name = hint
        sql, count = re.subn(rf"\bFROM {table}(?=\s+WHERE\b)", f"FROM {table} INDEXED BY {index_name}", sql)
        assert count == 1, sql
    return Plan(sql, names, fixed, tuple(processors), expanding, expanding_processor, tuple(results), tuple(columns))


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


class Direct:
    """Runs compiled plans on one DBAPI connection."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.dialect = connection.dialect
        self.cursor = connection.connection.cursor()

    def plan(self, statement: Any, keys: tuple[str, ...] | None = None) -> Plan | None:
        """`statement` (with the insert keys `keys`) compiled for this connection's dialect, or None."""
        return compiled_plan(statement, self.dialect, keys)

    def values(self, plan: Plan, params: dict[str, Any]) -> list[Any]:
        """One row of converted values in the plan's parameter order (its fixed values where `params` has none)."""
        fixed = plan.fixed
        row = [params[name] if name in params else fixed[name] for name in plan.names]
        for index, processor in plan.processors:
            row[index] = processor(row[index])
        return row

    def many(self, plan: Plan, params: Sequence[dict[str, Any]]) -> None:
        """Run `plan` once per parameter dict (one executemany)."""
        names = plan.names
        if plan.fixed:
            fixed = plan.fixed
            rows = [[item[name] if name in item else fixed[name] for name in names] for item in params]
        else:
            rows = [[item[name] for name in names] for item in params]
        self.many_rows(plan, rows)

    def many_rows(self, plan: Plan, rows: list[list[Any]]) -> None:
        """Run `plan` once per row of values given in its parameter order (processed in place)."""
        for index, kind, processor in plan.columns:
            _convert_column(rows, index, kind, processor)
        self.cursor.executemany(plan.sql, rows)

    def stream(self, plan: Plan, params: dict[str, Any], size: int) -> Iterator[Sequence[Any]]:
        """The rows of a plan without an expanding parameter, fetched in batches on a cursor of their own."""
        assert plan.expanding is None
        cursor = self.connection.connection.cursor()
        try:
            cursor.execute(plan.sql, self.values(plan, params))
            while batch := cursor.fetchmany(size):
                yield from _converted(batch, plan.results)
        finally:
            cursor.close()

    def rows(self, plan: Plan, params: dict[str, Any]) -> list[Any]:
        """The converted rows of a select (its expanding list, if any, padded to a few sizes)."""
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
