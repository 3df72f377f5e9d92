"""DuckDB plumbing for the metrics: a connection with Herald's SQL macros, and a relation over an export file.

Every value is read as text (CSV with `all_varchar`, Parquet cast to VARCHAR) so CSV and Parquet exports go through the
same SQL, and the parsing rules (durations, blanks, booleans) are Herald's, not a type sniffer's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

from herald.analytics.formats import ExportFile, ExportFileError
from herald.domain.billing import DEFAULT_MACHINE_CAP_SECONDS

# The SQL twins of herald.domain.durations.parse_duration and herald.domain.billing.billing_anomaly; a hypothesis test
# (tests/analytics/test_sql_agrees.py) checks that they agree with the Python functions.
# h_duration returns NULL for a text that is not a duration; callers turn that into a file error.
MACROS = f"""
CREATE OR REPLACE TEMP MACRO h_blank(t) AS (t IS NULL OR trim(t, ' \t\r\n') = '');
CREATE OR REPLACE TEMP MACRO h_duration_clean(v) AS (
    CASE
        WHEN v = '' THEN 0
        WHEN regexp_full_match(v, '[0-9]+(\\.[0-9]+)?') THEN CAST(ceil(CAST(v AS DOUBLE)) AS BIGINT)
        WHEN regexp_full_match(v, '[0-9]+:[0-9]{{1,2}}') THEN
            CASE WHEN CAST(split_part(v, ':', 2) AS BIGINT) <= 59
                 THEN CAST(split_part(v, ':', 1) AS BIGINT) * 60 + CAST(split_part(v, ':', 2) AS BIGINT) END
        WHEN regexp_full_match(v, '[0-9]+:[0-9]+:[0-9]{{1,2}}') THEN
            CASE WHEN CAST(split_part(v, ':', 2) AS BIGINT) <= 59 AND CAST(split_part(v, ':', 3) AS BIGINT) <= 59
                 THEN CAST(split_part(v, ':', 1) AS BIGINT) * 3600 + CAST(split_part(v, ':', 2) AS BIGINT) * 60
                      + CAST(split_part(v, ':', 3) AS BIGINT) END
    END
);
-- The fast branch is the exports' own `MM:SS` shape; everything else takes the general path.
CREATE OR REPLACE TEMP MACRO h_duration(t) AS (
    CASE
        WHEN t GLOB '[0-9][0-9]:[0-5][0-9]' THEN
            (ascii(t[1]) - 48) * 600 + (ascii(t[2]) - 48) * 60 + (ascii(t[4]) - 48) * 10 + ascii(t[5]) - 48
        ELSE h_duration_clean(trim(coalesce(t, ''), ' \t\r\n'))
    END
);
CREATE OR REPLACE TEMP MACRO h_anomaly(duration, billed, answered_by) AS (
    CASE
        WHEN coalesce(answered_by, '') = '' THEN billed <> 0
        WHEN answered_by = 'human' THEN billed <> duration
        WHEN answered_by = 'machine' THEN billed <> least(duration, {DEFAULT_MACHINE_CAP_SECONDS})
        WHEN answered_by = 'unknown' THEN billed <> duration AND billed <> least(duration, {DEFAULT_MACHINE_CAP_SECONDS})
        ELSE true
    END
);
CREATE OR REPLACE TEMP MACRO h_contact_status(s) AS (CASE WHEN s = 'acepted' THEN 'accepted' ELSE coalesce(s, '') END);
CREATE OR REPLACE TEMP MACRO h_true(t) AS (lower(trim(coalesce(t, ''), ' \t\r\n')) = 'true');
CREATE OR REPLACE TEMP MACRO h_boolish(t) AS (lower(trim(coalesce(t, ''), ' \t\r\n')) IN ('true', 'false', ''));
CREATE OR REPLACE TEMP MACRO h_ts(t) AS TRY_CAST(nullif(trim(coalesce(t, ''), ' \t\r\n'), '') AS TIMESTAMP);
-- CASE, not OR: DuckDB may evaluate both sides of an OR, and casting a non-JSON text to JSON raises.
CREATE OR REPLACE TEMP MACRO h_json_ok(t) AS (
    CASE
        WHEN h_blank(t) THEN true
        WHEN json_valid(t) THEN json_type(CAST(t AS JSON)) IN ('ARRAY', 'OBJECT', 'NULL')
        ELSE false
    END
);
CREATE OR REPLACE TEMP MACRO h_click_items(t) AS (
    CASE
        WHEN NOT h_json_ok(t) OR h_blank(t) THEN CAST([] AS JSON[])
        WHEN json_type(CAST(t AS JSON)) = 'ARRAY' THEN json_extract(CAST(t AS JSON), '$[*]')
        WHEN json_type(CAST(t AS JSON)) = 'OBJECT' THEN [CAST(t AS JSON)]
        ELSE CAST([] AS JSON[])
    END
);
CREATE OR REPLACE TEMP MACRO h_click_count(t) AS len(h_click_items(t));
"""


def connect() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with Herald's macros defined."""
    con = duckdb.connect()
    con.execute(MACROS)
    return con


def ident(name: str) -> str:
    """A column name quoted as an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A text quoted as an SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def source(export: ExportFile, columns: Sequence[str]) -> str:
    """A FROM-clause relation over the file giving `columns` as VARCHAR (a missing column reads as NULL)."""
    path = literal(str(export.path))
    if export.storage == "parquet":
        scan = f"read_parquet({path})"
    else:
        # No sniffing: the header was already read, and strict mode makes a ragged row an error, not a skipped row.
        types = ", ".join(f"{literal(c)}: 'VARCHAR'" for c in export.columns)
        scan = (
            f"read_csv({path}, header=true, auto_detect=false, columns={{{types}}}, "
            f"delim={literal(export.delimiter)}, quote='\"', escape='\"', strict_mode=true)"
        )
    select = ", ".join(
        f"CAST({ident(c)} AS VARCHAR) AS {ident(c)}" if export.has(c) else f"CAST(NULL AS VARCHAR) AS {ident(c)}"
        for c in columns
    )
    return f"(SELECT {select} FROM {scan})"


def fetch(con: duckdb.DuckDBPyConnection, query: str) -> list[tuple[Any, ...]]:
    """Run a query, turning DuckDB's multi-line errors into one short ExportFileError."""
    try:
        rows: list[tuple[Any, ...]] = con.execute(query).fetchall()
    except duckdb.Error as exc:
        raise ExportFileError(short_error(str(exc))) from exc
    return rows


def short_error(message: str) -> str:
    """The first useful lines of a DuckDB error, on one line."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    if not lines:
        return "unreadable file"
    head = lines[0].split("Error: ", 1)[-1]
    detail = next(
        (ln for ln in lines[1:] if ln.startswith(("Expected Number", "Value with", "Invalid unicode", "Malformed"))), ""
    )
    text = f"{head}: {detail}" if detail else head
    return "broken file: " + text.replace("CSV Error on Line", "CSV error on line")
