"""Metrics computed by DuckDB on a random export equal the same metrics computed row by row in plain Python."""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from herald.analytics.formats import CALL_COLUMNS, CONTACT_COLUMNS, SENDOUT_COLUMNS, open_export
from herald.analytics.metrics import analyze, call_activity_and_anomalies
from herald.analytics.sql import connect
from herald.domain.billing import billing_anomaly
from herald.domain.durations import format_mmss, parse_duration

Row = dict[str, str]
WS = " \t\r\n"


def blank(value: str) -> bool:
    return value.strip(WS) == ""


def write_csv(rows: list[Row], columns: list[str], crlf: bool, bom: bool) -> tuple[TemporaryDirectory[str], Path]:
    # RFC 4180 by hand: Python's csv writer leaves a bare "\r" unquoted when the line ending is "\n".
    def cell(value: str) -> str:
        return '"' + value.replace('"', '""') + '"' if any(ch in value for ch in ',"\r\n') else value

    end = "\r\n" if crlf else "\n"
    text = "".join(
        ",".join(cell(v) for v in line) + end for line in [columns, *([r[c] for c in columns] for r in rows)]
    )
    tmp = TemporaryDirectory()
    path = Path(tmp.name) / "export.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return tmp, path


def run(rows: list[Row], columns: list[str], crlf: bool, bom: bool) -> dict[str, Any]:
    tmp, path = write_csv(rows, columns, crlf, bom)
    with tmp:
        return analyze(open_export(path))


def rate(n: int, total: int) -> float | None:
    return round(n / total, 4) if total else None


free_text = st.text(alphabet="abcñ ,\"\r\n'=", max_size=8)
seconds = st.integers(0, 20_000)
duration_text = st.one_of(
    st.just(""),
    seconds.map(format_mmss),
    seconds.map(str),
    seconds.map(lambda s: f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"),
)

# --- contacts -----------------------------------------------------------------------------------------------------

STATUSES = ["queue", "sending", "failed", "retrying", "converted", "voicemail", "answered", "sent", "delivered"]
STATUSES += ["read", "accepted", "acepted", "rejected", "no-answer", "busy", ""]


@st.composite
def contact_exports(draw: st.DrawFn) -> tuple[list[Row], list[str], list[str]]:
    tags = draw(st.lists(st.sampled_from(["interested", "callback", "vip"]), unique=True, max_size=3))
    fields = draw(st.lists(st.sampled_from(["email", "plan", "rating"]), unique=True, max_size=3))
    bool_text = st.sampled_from(["True", "False", "", "true"])
    rows = []
    for i in range(draw(st.integers(0, 25))):
        row = {c: "" for c in CONTACT_COLUMNS}
        row.update(
            id=f"c{i}",
            contact=f"+52155{i:08d}",
            name=draw(free_text),
            context=draw(free_text),
            status=draw(st.sampled_from(STATUSES)),
            calls=draw(st.just("") | st.integers(0, 9).map(str)),
            billed_duration=draw(duration_text),
        )
        row.update({t: draw(bool_text) for t in tags})
        row.update({f: draw(st.just("") | free_text | bool_text) for f in fields})
        rows.append(row)
    return rows, tags, fields


def contacts_by_hand(rows: list[Row], extras: list[str]) -> dict[str, Any]:
    statuses = Counter("accepted" if r["status"] == "acepted" else r["status"] for r in rows)
    empty = [c for c in extras if all(blank(r[c]) for r in rows)]
    is_tag = {c: c not in empty and all(r[c].strip(WS).lower() in ("true", "false", "") for r in rows) for c in extras}
    fields = [c for c in extras if not is_tag[c] and c not in empty]
    if statuses.keys() & {"sent", "delivered", "read", "accepted", "rejected"}:
        channel, reach_statuses = "whatsapp", {"delivered", "read", "accepted", "converted"}
    elif statuses.keys() & {"answered", "voicemail"} or any(not blank(r["calls"]) for r in rows):
        channel, reach_statuses = "phone_call", {"answered", "converted"}
    else:
        channel, reach_statuses = "unknown", {"converted"}
    reach = sum(n for s, n in statuses.items() if s in reach_statuses)
    result: dict[str, Any] = {
        "format": "altur-contacts",
        "channel": channel,
        "contacts": len(rows),
        "status_counts": dict(statuses),
        "reach": {"count": reach, "rate": rate(reach, len(rows))},
        "conversion": {"count": statuses["converted"], "rate": rate(statuses["converted"], len(rows))},
        "with_extracted_data": sum(any(not blank(r[f]) for f in fields) for r in rows),
        "calls": sum(int(r["calls"]) for r in rows if not blank(r["calls"])),
        "billed_seconds": sum(parse_duration(r["billed_duration"]) for r in rows),
    }
    if extras:
        result["tags"] = {c: sum(r[c].strip(WS).lower() == "true" for r in rows) for c in extras if is_tag[c]}
        result["fields"] = fields
        result["empty_columns"] = empty
    return result


@settings(max_examples=60, deadline=None)
@given(contact_exports(), st.booleans(), st.booleans())
def test_contact_metrics_match_row_by_row(
    export: tuple[list[Row], list[str], list[str]], crlf: bool, bom: bool
) -> None:
    rows, tags, fields = export
    columns = [*CONTACT_COLUMNS, *tags, *fields]
    assert run(rows, columns, crlf, bom) == contacts_by_hand(rows, [*tags, *fields])


# --- calls --------------------------------------------------------------------------------------------------------


@st.composite
def call_exports(draw: st.DrawFn) -> tuple[list[Row], list[str]]:
    layout = list(CALL_COLUMNS)
    if draw(st.booleans()):  # the seed layout, without the 2026-07 columns
        layout = [c for c in layout if c not in ("ended_by", "ended_reason")]
    rows = []
    for i in range(draw(st.integers(0, 30))):
        answered_by = draw(st.sampled_from(["human", "machine", "unknown", "", "fax"]))
        duration = draw(seconds) if answered_by else 0
        billed = draw(
            st.sampled_from([duration, min(duration, 5), 0]) | st.integers(0, 20_000) if answered_by else st.just(0)
        )
        if not answered_by and draw(st.integers(0, 9)) == 0:
            billed = draw(st.integers(1, 30))
        row = {c: "" for c in layout}
        row.update(
            id=f"cll_{draw(st.integers(0, 10**6)):07d}_{i}",
            status=draw(st.sampled_from(["ended", "busy", "no-answer", "failed", ""])),
            answered_by=answered_by,
            duration=draw(st.sampled_from([format_mmss(duration), str(duration)])),
            billed_duration=draw(st.sampled_from([format_mmss(billed), str(billed)])),
            contact_name=draw(free_text),
        )
        rows.append(row)
    return rows, layout


def calls_by_hand(rows: list[Row]) -> dict[str, Any]:
    by: dict[str, dict[str, int]] = {
        k: {"calls": 0, "duration_seconds": 0, "billed_seconds": 0} for k in ("human", "machine", "unknown", "none")
    }
    anomalies = []
    for r in rows:
        d, b = parse_duration(r["duration"]), parse_duration(r["billed_duration"])
        key = r["answered_by"] or "none"
        entry = by.setdefault(key, {"calls": 0, "duration_seconds": 0, "billed_seconds": 0})
        entry["calls"] += 1
        entry["duration_seconds"] += d
        entry["billed_seconds"] += b
        if billing_anomaly(d, b, r["answered_by"]):
            anomalies.append(r["id"])
    return {
        "format": "altur-calls",
        "calls": len(rows),
        "status_counts": dict(Counter(r["status"] for r in rows)),
        "answered_by": by,
        "billing_anomalies": {"count": len(anomalies), "ids": sorted(anomalies)},
    }


@settings(max_examples=60, deadline=None)
@given(call_exports(), st.booleans(), st.booleans())
def test_call_metrics_match_row_by_row(export: tuple[list[Row], list[str]], crlf: bool, bom: bool) -> None:
    rows, layout = export
    assert run(rows, layout, crlf, bom) == calls_by_hand(rows)


@settings(max_examples=40, deadline=None)
@given(
    call_exports(),
    st.lists(st.sampled_from(["", "2026-07-01 09:00:00", "2026-07-01 23:59:59", "2026-07-03 00:00:00"]), min_size=30),
    st.integers(0, 6),
)
def test_report_activity_and_anomaly_rows_match_row_by_row(
    export: tuple[list[Row], list[str]], created: list[str], limit: int
) -> None:
    rows, layout = export
    for row, at in zip(rows, created, strict=False):
        row["created_at"] = at
    days: Counter[tuple[str, str]] = Counter()
    anomalies = []
    for r in rows:
        d, b = parse_duration(r["duration"]), parse_duration(r["billed_duration"])
        if r["created_at"]:
            days[(r["created_at"][:10], r["answered_by"] or "none")] += 1
        if billing_anomaly(d, b, r["answered_by"]):
            anomalies.append({"id": r["id"], "answered_by": r["answered_by"] or "none", "duration_seconds": d,
                              "billed_seconds": b})  # fmt: skip
    tmp, path = write_csv(rows, layout, crlf=True, bom=False)
    with tmp:
        timeline, first = call_activity_and_anomalies(open_export(path), connect(), limit)
    assert timeline == sorted((day, series, n) for (day, series), n in days.items())
    assert first == sorted(anomalies, key=lambda a: a["id"])[:limit]


# --- sendout ------------------------------------------------------------------------------------------------------

T0 = datetime(2026, 7, 1, 12, 0, 0)
timestamps = st.none() | st.integers(0, 10**10).map(lambda us: T0 + timedelta(microseconds=us))
click = st.fixed_dictionaries(
    {"id": st.sampled_from(["b1", "b2"]), "ts": st.just("2026-07-01 12:00:00.000000")},
    optional={"name": st.sampled_from(["Yes", "No", "Más info"])},
)
clicks_text = st.one_of(
    st.just(""),
    st.just("[]"),
    st.lists(click, max_size=3).map(lambda cs: json.dumps(cs, ensure_ascii=False, separators=(",", ":"))),
    click.map(json.dumps),  # a single object, as in Connectly's doc example
)


def ts_text(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


@st.composite
def sendout_exports(draw: st.DrawFn) -> list[Row]:
    rows = []
    for i in range(draw(st.integers(0, 30))):
        row = {c: "" for c in SENDOUT_COLUMNS}
        row.update(
            customer_external_id=f"+52155{i:08d}",
            sendout_id="d69ed06c-5385-4003-aa58-aae87f2e087e",
            sent_at=ts_text(draw(timestamps)),
            delivered_at=ts_text(draw(timestamps)),
            read_at=ts_text(draw(timestamps)),
            opt_out_at=ts_text(draw(timestamps)),
            error_code=draw(st.sampled_from(["", "", "131026", "131047", "470"])),
            button_clicks=draw(clicks_text),
            link_clicks=draw(clicks_text),
            input_variables=draw(st.just("") | free_text.map(lambda t: json.dumps({"name": t}))),
        )
        rows.append(row)
    return rows


def click_list(text: str) -> list[dict[str, str]]:
    if blank(text):
        return []
    value = json.loads(text)
    return value if isinstance(value, list) else [value]


def linear_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def sendout_by_hand(rows: list[Row]) -> dict[str, Any]:
    n = len(rows)
    has = lambda r, c: not blank(r[c])  # noqa: E731
    sent = sum(has(r, "sent_at") or has(r, "delivered_at") or has(r, "read_at") for r in rows)
    delivered = sum(has(r, "delivered_at") or has(r, "read_at") for r in rows)
    read = sum(has(r, "read_at") for r in rows)
    opted_out = sum(has(r, "opt_out_at") for r in rows)
    errors = Counter(r["error_code"] for r in rows if has(r, "error_code"))
    failed = sum(errors.values())
    clicked = sum(bool(click_list(r["button_clicks"]) or click_list(r["link_clicks"])) for r in rows)
    buttons = Counter(c.get("name", "(unnamed)") for r in rows for c in click_list(r["button_clicks"]))
    links = Counter(c.get("name", "(unnamed)") for r in rows for c in click_list(r["link_clicks"]))
    fmt = "%Y-%m-%d %H:%M:%S.%f"
    ttr = [
        (datetime.strptime(r["read_at"], fmt) - datetime.strptime(r["sent_at"], fmt)).total_seconds()
        for r in rows
        if has(r, "read_at") and has(r, "sent_at")
    ]
    return {
        "format": "connectly-sendout",
        "recipients": n,
        "sent": sent,
        "delivered": delivered,
        "read": read,
        "opted_out": opted_out,
        "failed": failed,
        "clicked": clicked,
        "errors": dict(errors),
        "button_clicks": dict(buttons),
        "link_clicks": dict(links),
        "rates": {
            "sent": rate(sent, n),
            "delivered": rate(delivered, n),
            "read": rate(read, n),
            "clicked": rate(clicked, n),
            "opted_out": rate(opted_out, n),
            "failed": rate(failed, n),
        },
        "rates_over_sent": {
            "delivered": rate(delivered, sent),
            "read": rate(read, sent),
            "clicked": rate(clicked, sent),
            "opted_out": rate(opted_out, sent),
        },
        "time_to_read_seconds": {
            "count": len(ttr),
            **({f"p{round(q * 100)}": linear_quantile(ttr, q) for q in (0.5, 0.9, 0.99)} if ttr else {}),
        },
    }


@settings(max_examples=60, deadline=None)
@given(sendout_exports(), st.booleans(), st.booleans())
def test_sendout_metrics_match_row_by_row(rows: list[Row], crlf: bool, bom: bool) -> None:
    got = run(rows, list(SENDOUT_COLUMNS), crlf, bom)
    expected = sendout_by_hand(rows)
    got_ttr, expected_ttr = got.pop("time_to_read_seconds"), expected.pop("time_to_read_seconds")
    assert got == expected
    assert got_ttr.keys() == expected_ttr.keys()
    assert got_ttr["count"] == expected_ttr["count"]
    for key in got_ttr.keys() - {"count"}:
        # the JSON rounds to milliseconds
        assert math.isclose(got_ttr[key], expected_ttr[key], abs_tol=0.0006), key
