"""THE metric definitions of `herald analyze` (SPEC §9), as DuckDB SQL over an export file.

One module for the CLI, the HTML report, and the REST API / web UI: each metric is defined once here. Every function
scans the file with DuckDB (streaming, so files larger than memory work) and returns plain JSON-ready values.
Rates are fractions rounded to 4 decimals; a rate over zero rows is None.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import duckdb

from herald.analytics.formats import ExportFile, ExportFileError, ExportFormat
from herald.analytics.sql import connect, fetch, ident, source

Json = dict[str, Any]

#: Reach statuses per channel (SPEC §9).
REACH_STATUSES: dict[str, frozenset[str]] = {
    "phone_call": frozenset({"answered", "converted"}),
    "whatsapp": frozenset({"delivered", "read", "accepted", "converted"}),
}
WHATSAPP_EVIDENCE = frozenset({"sent", "delivered", "read", "accepted", "rejected"})
PHONE_EVIDENCE = frozenset({"answered", "voicemail"})
ANSWERED_BY_KEYS = ("human", "machine", "unknown", "none")
TIME_TO_READ_QUANTILES = (0.5, 0.9, 0.99)
UNNAMED_CLICK = "(unnamed)"


def rate(count: int, total: int) -> float | None:
    """`count / total` rounded to 4 decimals; None when there is nothing to divide by."""
    return round(count / total, 4) if total else None


def analyze(export: ExportFile, con: duckdb.DuckDBPyConnection | None = None) -> Json:
    """The JSON summary of one export file, by its format."""
    con = con or connect()
    if export.format in (ExportFormat.ALTUR_CONTACTS, ExportFormat.ALTUR_RESULTS):
        return contact_metrics(export, con)
    if export.format is ExportFormat.ALTUR_CALLS:
        return call_metrics(export, con)
    return sendout_metrics(export, con)


def _raise_if_bad(bad: Iterable[tuple[str, int, Any]]) -> None:
    for column, count, example in bad:
        if count:
            raise ExportFileError(f"{count} bad value(s) in column {column}, e.g. {example!r}")


# --- Altur contact / results export -----------------------------------------------------------------------------


def contact_channel(statuses: Iterable[str], calls_set: bool) -> str:
    """`whatsapp` if any WhatsApp-only status appears; else `phone_call` on answered/voicemail or a `calls` value.

    `unknown` otherwise: then no reach status of either channel is present, so reach is the same either way.
    """
    present = set(statuses)
    if present & WHATSAPP_EVIDENCE:
        return "whatsapp"
    if present & PHONE_EVIDENCE or calls_set:
        return "phone_call"
    return "unknown"


def classify_extra_columns(
    export: ExportFile, non_boolean: dict[str, int], non_blank: dict[str, int] | None = None
) -> tuple[list[str], list[str], list[str]]:
    """Split the extra columns into tags, extracted fields and empty columns.

    When the file comes from a known campaign (`export.known_tags`), its agent decides: a column named as a tag is a
    tag, any other is a field, even when empty. Otherwise a column empty in every row is "empty" (it cannot tell a
    tag from a field), one whose values are all True/False/empty is a tag, and the rest are extracted fields.
    """
    extras = export.extra_columns
    if export.known_tags is not None:
        known = set(export.known_tags)
        return [c for c in extras if c in known], [c for c in extras if c not in known], []
    counted = non_blank if non_blank is not None else {}
    empty = [c for c in extras if non_blank is not None and counted.get(c, 0) == 0]
    tags = [c for c in extras if non_boolean.get(c, 0) == 0 and c not in empty]
    fields = [c for c in extras if non_boolean.get(c, 0) > 0]
    return tags, fields, empty


def contact_metrics(export: ExportFile, con: duckdb.DuckDBPyConnection) -> Json:
    """Status counts, channel, reach, conversion, extracted data, tags, calls and billed seconds of a contact export."""
    extras = list(export.extra_columns)
    columns = ["status", "calls", "billed_duration", *extras]
    per_extra = "".join(
        f", count(*) FILTER (WHERE NOT h_boolish({ident(c)})), count(*) FILTER (WHERE h_true({ident(c)}))"
        f", count(*) FILTER (WHERE NOT h_blank({ident(c)}))"
        for c in extras
    )
    # One scan, grouped by status: every other figure is a sum over the status groups.
    rows = fetch(
        con,
        f"""
        SELECT h_contact_status(status), count(*),
               count(*) FILTER (WHERE NOT h_blank(calls)),
               sum(TRY_CAST(trim(calls) AS BIGINT)),
               count(*) FILTER (WHERE NOT h_blank(calls) AND TRY_CAST(trim(calls) AS BIGINT) IS NULL),
               any_value(calls) FILTER (WHERE NOT h_blank(calls) AND TRY_CAST(trim(calls) AS BIGINT) IS NULL),
               sum(h_duration(billed_duration)),
               count(*) FILTER (WHERE h_duration(billed_duration) IS NULL),
               any_value(billed_duration) FILTER (WHERE h_duration(billed_duration) IS NULL)
               {per_extra}
        FROM {source(export, columns)} GROUP BY 1 ORDER BY 1
        """,
    )
    status_counts = {str(r[0]): int(r[1]) for r in rows}
    contacts = sum(status_counts.values())
    calls_set = sum(int(r[2]) for r in rows)
    calls_sum = sum(int(r[3] or 0) for r in rows)
    billed = sum(int(r[6] or 0) for r in rows)
    _raise_if_bad(
        [
            ("calls", sum(int(r[4]) for r in rows), next((r[5] for r in rows if r[4]), None)),
            ("billed_duration", sum(int(r[7]) for r in rows), next((r[8] for r in rows if r[7]), None)),
        ]
    )
    non_boolean = {c: sum(int(r[9 + 3 * i]) for r in rows) for i, c in enumerate(extras)}
    true_counts = {c: sum(int(r[10 + 3 * i]) for r in rows) for i, c in enumerate(extras)}
    non_blank = {c: sum(int(r[11 + 3 * i]) for r in rows) for i, c in enumerate(extras)}
    tags, fields, empty = classify_extra_columns(export, non_boolean, non_blank)

    channel = contact_channel(status_counts, calls_set > 0)
    reach_statuses = REACH_STATUSES.get(channel, frozenset({"converted"}))
    reach = sum(n for s, n in status_counts.items() if s in reach_statuses)
    converted = status_counts.get("converted", 0)

    result: Json = {
        "format": export.format.value,
        "channel": channel,
        "contacts": contacts,
        "status_counts": status_counts,
        "reach": {"count": reach, "rate": rate(reach, contacts)},
        "conversion": {"count": converted, "rate": rate(converted, contacts)},
        "with_extracted_data": with_extracted_data(export, fields, con),
    }
    if extras:
        result["tags"] = {t: true_counts[t] for t in tags}
        result["fields"] = fields
        result["empty_columns"] = empty
    if export.has("calls"):
        result["calls"] = calls_sum
    if export.has("billed_duration"):
        result["billed_seconds"] = billed
    return result


def with_extracted_data(export: ExportFile, fields: list[str], con: duckdb.DuckDBPyConnection) -> int:
    """Rows with at least one non-empty extracted-field column (the rows a results export keeps, SPEC §7.3)."""
    if not fields:
        return 0
    any_field = " OR ".join(f"NOT h_blank({ident(c)})" for c in fields)
    rows = fetch(con, f"SELECT count(*) FILTER (WHERE {any_field}) FROM {source(export, fields)}")
    return int(rows[0][0])


# --- Altur call export ------------------------------------------------------------------------------------------


def call_metrics(export: ExportFile, con: duckdb.DuckDBPyConnection) -> Json:
    """Call count, status counts, the cost audit by answered_by, and billing anomalies (SPEC §5.2, §9)."""
    src = source(export, ["id", "status", "answered_by", "duration", "billed_duration"])
    # One scan: GROUPING SETS gives the status counts and the answered_by audit from the same pass.
    rows = fetch(
        con,
        f"""
        WITH c AS (
            SELECT id, coalesce(status, '') AS status, coalesce(answered_by, '') AS answered_by,
                   duration, billed_duration,
                   h_duration(duration) AS d, h_duration(billed_duration) AS b
            FROM {src}
        )
        SELECT grouping(status), status, answered_by, count(*), sum(d), sum(b),
               count(*) FILTER (WHERE h_anomaly(d, b, answered_by)),
               list(coalesce(id, '') ORDER BY id) FILTER (WHERE h_anomaly(d, b, answered_by)),
               count(*) FILTER (WHERE d IS NULL), any_value(duration) FILTER (WHERE d IS NULL),
               count(*) FILTER (WHERE b IS NULL), any_value(billed_duration) FILTER (WHERE b IS NULL)
        FROM c GROUP BY GROUPING SETS ((status), (answered_by))
        """,
    )
    by_status = [r for r in rows if r[0] == 0]
    by_answer = [r for r in rows if r[0] == 1]
    _raise_if_bad(
        [
            ("duration", sum(int(r[8]) for r in by_answer), next((r[9] for r in by_answer if r[8]), None)),
            ("billed_duration", sum(int(r[10]) for r in by_answer), next((r[11] for r in by_answer if r[10]), None)),
        ]
    )
    answered_by: Json = {k: {"calls": 0, "duration_seconds": 0, "billed_seconds": 0} for k in ANSWERED_BY_KEYS}
    anomaly_ids: list[str] = []
    for r in sorted(by_answer, key=lambda r: str(r[2])):
        key = str(r[2]) or "none"
        answered_by[key] = {"calls": int(r[3]), "duration_seconds": int(r[4] or 0), "billed_seconds": int(r[5] or 0)}
        anomaly_ids.extend(r[7] or [])
    return {
        "format": export.format.value,
        "calls": sum(int(r[3]) for r in by_status),
        "status_counts": {str(r[1]): int(r[3]) for r in sorted(by_status, key=lambda r: str(r[1]))},
        "answered_by": answered_by,
        "billing_anomalies": {"count": len(anomaly_ids), "ids": sorted(anomaly_ids)},
    }


def _int(text: str | None) -> int | None:
    return None if text is None else int(text)


def call_activity_and_anomalies(
    export: ExportFile, con: duckdb.DuckDBPyConnection, limit: int = 200
) -> tuple[list[tuple[str, str, int]], list[Json]]:
    """The report's extra view of a call export, in one scan: calls per day of `created_at` and answered_by (as in
    `activity`), and the first `limit` anomalous calls (by id) with what they billed and what the rules allow."""
    src = source(export, ["id", "answered_by", "duration", "billed_duration", "created_at"])
    rows = fetch(
        con,
        f"""
        WITH c AS (SELECT coalesce(id, '') AS id, coalesce(answered_by, '') AS answered_by,
                          h_duration(duration) AS d, h_duration(billed_duration) AS b,
                          CAST(h_ts(created_at) AS DATE) AS day FROM {src}),
        a AS (SELECT *, h_anomaly(d, b, answered_by) AS anomaly FROM c)
        SELECT day, answered_by, count(*),
               list([id, answered_by, CAST(d AS VARCHAR), CAST(b AS VARCHAR)] ORDER BY id) FILTER (WHERE anomaly)
        FROM a GROUP BY ALL ORDER BY ALL
        """,
    )
    timeline: dict[tuple[str, str], int] = {}
    anomalies: list[list[str]] = []
    for day, answered_by, count, found in rows:
        if day is not None:
            key = (day.isoformat(), answered_by or "none")
            timeline[key] = timeline.get(key, 0) + int(count)
        # Each group's list is sorted; only the first `limit` of a group can be among the first `limit` overall.
        anomalies.extend((found or [])[:limit])
    anomalies.sort(key=lambda item: item[0])
    return [(day, series, n) for (day, series), n in sorted(timeline.items())], [
        {"id": i, "answered_by": a or "none", "duration_seconds": _int(d), "billed_seconds": _int(b)}
        for i, a, d, b in anomalies[:limit]
    ]


# --- Connectly sendout export -----------------------------------------------------------------------------------


def sendout_metrics(export: ExportFile, con: duckdb.DuckDBPyConnection) -> Json:
    """The sendout funnel, error codes, clicks by name, rates and time-to-read percentiles (SPEC §9)."""
    timestamps = ["sent_at", "delivered_at", "read_at", "opt_out_at"]
    src = source(export, ["error_code", *timestamps, "button_clicks", "link_clicks"])
    bad_ts = "".join(
        f", count(*) FILTER (WHERE NOT h_blank({c}) AND h_ts({c}) IS NULL),"
        f" any_value({c}) FILTER (WHERE NOT h_blank({c}) AND h_ts({c}) IS NULL)"
        for c in timestamps
    )
    bad_json = "".join(
        f", count(*) FILTER (WHERE NOT h_json_ok({c})), any_value({c}) FILTER (WHERE NOT h_json_ok({c}))"
        for c in ("button_clicks", "link_clicks")
    )
    quantiles = ", ".join(str(q) for q in TIME_TO_READ_QUANTILES)
    # One scan for the funnel and errors (grouped by error code); the grand-total set carries the percentiles.
    rows = fetch(
        con,
        f"""
        WITH s AS (
            SELECT *, CASE WHEN h_blank(error_code) THEN NULL ELSE error_code END AS code,
                   NOT (h_blank(sent_at) AND h_blank(delivered_at) AND h_blank(read_at)) AS is_sent,
                   NOT (h_blank(delivered_at) AND h_blank(read_at)) AS is_delivered,
                   (h_json_ok(button_clicks) AND h_json_ok(link_clicks)
                    AND h_click_count(button_clicks) + h_click_count(link_clicks) > 0) AS is_clicked,
                   epoch(h_ts(read_at) - h_ts(sent_at)) AS ttr
            FROM {src}
        )
        SELECT grouping(code), code, count(*),
               count(*) FILTER (WHERE is_sent), count(*) FILTER (WHERE is_delivered),
               count(*) FILTER (WHERE NOT h_blank(read_at)), count(*) FILTER (WHERE NOT h_blank(opt_out_at)),
               count(*) FILTER (WHERE is_clicked),
               count(ttr), quantile_cont(ttr, [{quantiles}])
               {bad_ts} {bad_json}
        FROM s GROUP BY GROUPING SETS ((), (code))
        """,
    )
    total = next(r for r in rows if r[0] == 1)
    bad_columns = [*timestamps, "button_clicks", "link_clicks"]
    _raise_if_bad((c, int(total[10 + 2 * i]), total[11 + 2 * i]) for i, c in enumerate(bad_columns))
    recipients, sent, delivered, read, opted_out, clicked = (int(v) for v in total[2:8])
    errors = {str(r[1]): int(r[2]) for r in sorted(rows, key=lambda r: str(r[1])) if r[0] == 0 and r[1] is not None}
    failed = sum(errors.values())
    clicks = click_counts(export, con)
    ttr_count = int(total[8])
    percentiles = dict(zip(TIME_TO_READ_QUANTILES, total[9] or [], strict=False)) if ttr_count else {}
    return {
        "format": export.format.value,
        "recipients": recipients,
        "sent": sent,
        "delivered": delivered,
        "read": read,
        "opted_out": opted_out,
        "failed": failed,
        "clicked": clicked,
        "errors": errors,
        "button_clicks": clicks["button"],
        "link_clicks": clicks["link"],
        "rates": {
            name: rate(count, recipients)
            for name, count in (
                ("sent", sent),
                ("delivered", delivered),
                ("read", read),
                ("clicked", clicked),
                ("opted_out", opted_out),
                ("failed", failed),
            )
        },
        # SPEC §9 reads the funnel over sent messages; both bases are given so neither reading is lost.
        "rates_over_sent": {
            name: rate(count, sent)
            for name, count in (
                ("delivered", delivered),
                ("read", read),
                ("clicked", clicked),
                ("opted_out", opted_out),
            )
        },
        "time_to_read_seconds": {
            "count": ttr_count,
            **{f"p{round(q * 100)}": (round(float(v), 3) if v is not None else None) for q, v in percentiles.items()},
        },
    }


def click_counts(export: ExportFile, con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, int]]:
    """Click events per button name and per link name; a click without a name counts under `(unnamed)`."""
    src = source(export, ["button_clicks", "link_clicks"])
    rows = fetch(
        con,
        f"""
        WITH items AS (
            SELECT 'button' AS kind, unnest(h_click_items(button_clicks)) AS item FROM {src}
            WHERE NOT h_blank(button_clicks)
            UNION ALL
            SELECT 'link' AS kind, unnest(h_click_items(link_clicks)) AS item FROM {src}
            WHERE NOT h_blank(link_clicks)
        )
        SELECT kind, coalesce(json_extract_string(item, '$.name'), '{UNNAMED_CLICK}') AS name, count(*)
        FROM items GROUP BY ALL ORDER BY kind, count(*) DESC, name
        """,
    )
    counts: dict[str, dict[str, int]] = {"button": {}, "link": {}}
    for kind, name, n in rows:
        counts[str(kind)][str(name)] = int(n)
    return counts


# --- Activity over time (report) --------------------------------------------------------------------------------


def activity(export: ExportFile, con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, int]]:
    """Rows per day and series, for the report's timeline: `(YYYY-MM-DD, series, count)` sorted by day.

    Contacts: by day of `last_update` and status. Calls: by day of `created_at` and answered_by (`none` if blank).
    Sendout: each event (sent, delivered, read, opted_out) on the day of its own timestamp. Rows without a readable
    timestamp are left out of the timeline (they are still in every other figure).
    """
    if export.format is ExportFormat.ALTUR_CALLS:
        return call_activity_and_anomalies(export, con, limit=0)[0]
    if export.format is ExportFormat.CONNECTLY_SENDOUT:
        events = ("sent_at", "delivered_at", "read_at", "opt_out_at")
        src = source(export, list(events))
        labels = ", ".join(f"CAST(h_ts({c}) AS DATE) AS {c}" for c in events)
        query = f"""UNPIVOT (SELECT {labels} FROM {src}) ON {", ".join(events)} INTO NAME event VALUE day"""
        query = f"""SELECT day, replace(replace(event, '_at', ''), 'opt_out', 'opted_out'), count(*)
                    FROM ({query}) GROUP BY ALL ORDER BY ALL"""
    else:
        src = source(export, ["last_update", "status"])
        query = f"""SELECT CAST(h_ts(last_update) AS DATE) AS day, h_contact_status(status), count(*)
                    FROM {src} GROUP BY ALL HAVING day IS NOT NULL ORDER BY ALL"""
    return [(r[0].isoformat(), str(r[1]), int(r[2])) for r in fetch(con, query)]
