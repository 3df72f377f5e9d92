"""PostgreSQL: a batch of row writes as one statement.

An executemany on PostgreSQL runs one statement per row (psycopg pipelines the round trips, but the server parses,
plans and executes each, and SQLAlchemy and psycopg build each row's parameters apart). The engine writes a few rows
per attempt (the claim's contact and call, the start's provider id, the end's call and contact), so a live worker's
batches go in as one statement each instead: the rows travel as one JSON text, unpacked by `json_to_recordset`.
One JSON parameter is also cheaper to send than arrays (psycopg dumps lists element by element in Python), and the
statement's text depends only on the columns written, so each is prepared once per connection.

Same results as the executemany it replaces: rows naming the same key are written once, with the last one given
(as the last of an executemany's updates would win).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql

from herald.store.schema import naive_utc

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_SQL: dict[tuple[Any, ...], str] = {}


def _encode(value: Any) -> Any:
    # Timestamps are stored as naive UTC (schema.UTCDateTime): the same here, as ISO text `timestamp` parses.
    if isinstance(value, datetime):
        return naive_utc(value).isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to PostgreSQL: {value!r}")


def _dumps(names: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    return json.dumps([dict(zip(names, row, strict=True)) for row in rows], default=_encode, separators=(",", ":"))


def _record_type(table: Table, names: Sequence[str]) -> str:
    return ", ".join(f'"{name}" {table.c[name].type.compile(dialect=_DIALECT)}' for name in names)


def _last_per_key(rows: Sequence[Sequence[Any]], width: int) -> list[Sequence[Any]]:
    return list({tuple(row[:width]): row for row in rows}.values())


def update(
    connection: Connection,
    table: Table,
    keys: Sequence[str],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    condition: str = "",
) -> int:
    """Set `columns` of the rows matching each given row's `keys` (each row: the keys' values, then the columns'), in
    one statement, with `condition` (SQL on the table's columns) added to the match; returns how many rows changed."""
    if not rows:
        return 0
    signature = ("update", table.name, tuple(keys), tuple(columns), condition)
    sql = _SQL.get(signature)
    if sql is None:
        assignments = ", ".join(f'"{name}" = v."{name}"' for name in columns)
        match = " AND ".join(f'{table.name}."{key}" = v."{key}"' for key in keys)
        extra = f" AND ({condition})" if condition else ""
        # The first key's values again, as an array: the planner then finds the rows by their index. Joined to the
        # JSON rows alone (100 rows to its estimate), it would read the whole table to hash-join them.
        first = f'{table.name}."{keys[0]}" = ANY(%s::{table.c[keys[0]].type.compile(dialect=_DIALECT)}[])'
        sql = _SQL[signature] = (
            f"UPDATE {table.name} SET {assignments} "
            f"FROM json_to_recordset(%s::json) AS v({_record_type(table, [*keys, *columns])}) "
            f"WHERE {first} AND {match}{extra}"
        )
    # In key order: two batches locking rows of one table meet them in the same order.
    ordered = sorted(_last_per_key(rows, len(keys)), key=lambda row: tuple(row[: len(keys)]))
    firsts = list(dict.fromkeys(row[0] for row in ordered))
    result = connection.exec_driver_sql(sql, (_dumps([*keys, *columns], ordered), firsts))
    return int(result.rowcount)


def update_sparse(
    connection: Connection, table: Table, key: str, changes: Sequence[tuple[Any, Mapping[str, Any]]]
) -> int:
    """Set, on each row whose `key` is given, the columns of its own change (rows may set different columns), in one
    statement: a column a row does not set keeps its value. Changes of one key are applied in the order given."""
    merged: dict[Any, dict[str, Any]] = {}
    for row_key, values in changes:
        merged.setdefault(row_key, {}).update(values)
    if not merged:
        return 0
    columns = sorted({name for values in merged.values() for name in values})
    if all(len(values) == len(columns) for values in merged.values()):
        rows = [[row_key, *(values[name] for name in columns)] for row_key, values in merged.items()]
        return update(connection, table, [key], columns, rows)
    signature = ("sparse", table.name, key, tuple(columns))
    sql = _SQL.get(signature)
    if sql is None:
        assignments = ", ".join(
            f'"{name}" = CASE WHEN \'{name}\' = ANY(v._set) THEN v."{name}" ELSE {table.name}."{name}" END'
            for name in columns
        )
        first = f'{table.name}."{key}" = ANY(%s::{table.c[key].type.compile(dialect=_DIALECT)}[])'
        sql = _SQL[signature] = (
            f"UPDATE {table.name} SET {assignments} "
            f"FROM json_to_recordset(%s::json) AS v({_record_type(table, [key, *columns])}, _set text[]) "
            f'WHERE {first} AND {table.name}."{key}" = v."{key}"'
        )
    ordered = sorted(merged.items(), key=lambda item: item[0])
    text = json.dumps(
        [{key: row_key, **values, "_set": list(values)} for row_key, values in ordered],
        default=_encode,
        separators=(",", ":"),
    )
    result = connection.exec_driver_sql(sql, (text, [row_key for row_key, _ in ordered]))
    return int(result.rowcount)


def insert(
    connection: Connection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert rows (values in `columns` order; the table's Python-side defaults fill the columns not given, as a Core
    insert would) in one statement; returns the `returning` columns of each new row, in no particular order."""
    if not rows:
        return []
    defaults = {
        column.name: column.default.arg if column.default.is_scalar else column.default.arg(None)  # type: ignore[attr-defined]
        for column in table.columns
        if column.default is not None and column.name not in columns
    }
    names = [*columns, *defaults]
    signature = ("insert", table.name, tuple(names), tuple(returning))
    sql = _SQL.get(signature)
    if sql is None:
        quoted = ", ".join(f'"{name}"' for name in names)
        sql = _SQL[signature] = (
            f"INSERT INTO {table.name} ({quoted}) SELECT {quoted} FROM json_to_recordset(%s::json) "
            f"AS v({_record_type(table, names)}) RETURNING {', '.join(returning)}"
        )
    fixed = list(defaults.values())
    text = _dumps(names, [[*row, *fixed] for row in rows])
    return [tuple(row) for row in connection.exec_driver_sql(sql, (text,)).all()]
