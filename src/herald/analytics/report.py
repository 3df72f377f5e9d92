"""The self-contained HTML report of `herald analyze --report` (Plotly, its JS inlined, no network).

Only aggregates reach the page: the figures from `metrics` plus a day-by-day timeline and at most
`ANOMALY_ROWS` anomalous calls, so the page's data stays a few KB whatever the file's size. The charts are plain
Plotly figure dicts drawn by the inlined plotly.js, so no Python-side figure objects are built.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
from jinja2 import Environment, PackageLoader, select_autoescape

from herald.analytics.formats import ExportFile, ExportFormat
from herald.analytics.metrics import Json, activity, call_activity_and_anomalies

ANOMALY_ROWS = 200
PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "showLink": False}
_LAYOUT: dict[str, Any] = {"margin": {"l": 60, "r": 20, "t": 40, "b": 60}, "height": 360}


@dataclass
class Section:
    """One titled block of the report: a chart, a table, or both."""

    key: str
    title: str
    figure: Json | None = None
    table_head: list[str] = field(default_factory=list)
    table_rows: list[list[str]] = field(default_factory=list)
    note: str = ""


@dataclass
class FileReport:
    """Everything the template shows for one input file."""

    anchor: str
    name: str
    format: str
    summary: list[tuple[str, str]]
    sections: list[Section]


def _bar(x: Sequence[Any], y: Sequence[Any], title: str, **trace: Any) -> Json:
    return {
        "data": [{"type": "bar", "x": list(x), "y": list(y), **trace}],
        # category axis: error codes and names stay labels instead of becoming a numeric scale
        "layout": {**_LAYOUT, "title": {"text": title}, "xaxis": {"type": "category"}},
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def _timeline(rows: list[tuple[str, str, int]], title: str) -> Section:
    series: dict[str, dict[str, int]] = defaultdict(dict)
    for day, name, count in rows:
        series[name][day] = count
    data = [
        {"type": "bar", "name": name, "x": list(days), "y": list(days.values())}
        for name, days in sorted(series.items())
    ]
    layout = {**_LAYOUT, "title": {"text": title}, "xaxis": {"type": "date"}, "barmode": "stack"}
    figure = {"data": data, "layout": layout}
    note = "" if rows else "No readable timestamps."
    return Section("activity", "Activity over time", figure=figure, note=note)


def _status_section(counts: dict[str, int], title: str) -> Section:
    ordered = sorted(counts.items(), key=lambda item: -item[1])
    return Section(
        "status",
        "Status breakdown",
        figure=_bar([k or "(blank)" for k, _ in ordered], [v for _, v in ordered], title),
        table_head=["status", "rows"],
        table_rows=[[k or "(blank)", f"{v:,}"] for k, v in ordered],
    )


def _contact_sections(result: Json, timeline: list[tuple[str, str, int]]) -> list[Section]:
    n = result["contacts"]
    reach, conversion = result["reach"], result["conversion"]
    rr = Section(
        "reach",
        "Reach and conversion",
        figure=_bar(
            ["contacts", "reached", "converted", "with extracted data"],
            [n, reach["count"], conversion["count"], result["with_extracted_data"]],
            f"Reach and conversion ({result['channel']})",
        ),
        table_head=["measure", "contacts", "rate"],
        table_rows=[
            ["reach", f"{reach['count']:,}", _pct(reach["rate"])],
            ["conversion", f"{conversion['count']:,}", _pct(conversion["rate"])],
        ],
    )
    sections = [_status_section(result["status_counts"], "Contacts by status"), rr]
    if result.get("tags"):
        tags = result["tags"]
        sections.append(Section("tags", "Tags", figure=_bar(list(tags), list(tags.values()), "Contacts per tag")))
    sections.append(_timeline(timeline, "Contacts by day of last update"))
    return sections


def _call_sections(result: Json, timeline: list[tuple[str, str, int]], anomalies: list[Json]) -> list[Section]:
    by = result["answered_by"]
    keys = list(by)
    cost = {
        "data": [
            {"type": "bar", "name": "duration s", "x": keys, "y": [by[k]["duration_seconds"] for k in keys]},
            {"type": "bar", "name": "billed s", "x": keys, "y": [by[k]["billed_seconds"] for k in keys]},
        ],
        "layout": {**_LAYOUT, "title": {"text": "Seconds by answered_by"}, "barmode": "group"},
    }
    count = result["billing_anomalies"]["count"]
    shown = f"showing the first {len(anomalies)} of {count:,} (by id)" if count > len(anomalies) else ""
    return [
        _status_section(result["status_counts"], "Calls by status"),
        Section(
            "cost",
            "Cost by answered_by",
            figure=cost,
            table_head=["answered_by", "calls", "duration s", "billed s"],
            table_rows=[
                [k, f"{by[k]['calls']:,}", f"{by[k]['duration_seconds']:,}", f"{by[k]['billed_seconds']:,}"]
                for k in keys
            ],
        ),
        Section(
            "anomalies",
            f"Billing anomalies ({count:,})",
            table_head=["id", "answered_by", "duration s", "billed s"],
            table_rows=[
                [str(a["id"]), str(a["answered_by"]), str(a["duration_seconds"]), str(a["billed_seconds"])]
                for a in anomalies
            ],
            note=shown or ("" if count else "No call breaks the billing rules."),
        ),
        _timeline(timeline, "Calls per day by answered_by"),
    ]


def _sendout_sections(result: Json, timeline: list[tuple[str, str, int]]) -> list[Section]:
    steps = ["recipients", "sent", "delivered", "read", "clicked", "opted_out"]
    funnel = {
        "data": [{"type": "funnel", "y": steps, "x": [result[s] for s in steps], "textinfo": "value+percent initial"}],
        "layout": {**_LAYOUT, "title": {"text": "Sendout funnel"}},
    }
    errors = result["errors"]
    buttons, links = result["button_clicks"], result["link_clicks"]
    clicks = {
        "data": [
            {"type": "bar", "name": "buttons", "x": list(buttons), "y": list(buttons.values())},
            {"type": "bar", "name": "links", "x": list(links), "y": list(links.values())},
        ],
        "layout": {**_LAYOUT, "title": {"text": "Click events by name"}, "xaxis": {"type": "category"}},
    }
    ttr = result["time_to_read_seconds"]
    return [
        Section(
            "funnel",
            "Sendout funnel",
            figure=funnel,
            table_head=["step", "rows", "of recipients", "of sent"],
            table_rows=[
                [s, f"{result[s]:,}", _pct(result["rates"].get(s)), _pct(result["rates_over_sent"].get(s))]
                for s in [*steps[1:], "failed"]
            ],
            note=", ".join(f"time to read {k}: {v:,.1f} s" for k, v in ttr.items() if k != "count" and v is not None),
        ),
        Section(
            "errors",
            "Errors",
            figure=_bar(list(errors), list(errors.values()), "Rows by error code", type="bar") if errors else None,
            table_head=["error_code", "rows"],
            table_rows=[[k, f"{v:,}"] for k, v in errors.items()],
            note="" if errors else "No errors.",
        ),
        Section(
            "clicks",
            "Clicks by button",
            figure=clicks,
            table_head=["kind", "name", "click events"],
            table_rows=[["button", k, f"{v:,}"] for k, v in buttons.items()]
            + [["link", k, f"{v:,}"] for k, v in links.items()],
            note="" if buttons or links else "No clicks.",
        ),
        _timeline(timeline, "Events per day"),
    ]


def _summary(result: Json) -> list[tuple[str, str]]:
    keys = ("channel", "contacts", "calls", "billed_seconds", "with_extracted_data", "recipients", "failed")
    rows = [
        (k.replace("_", " "), f"{result[k]:,}" if isinstance(result[k], int) else str(result[k]))
        for k in keys
        if k in result
    ]
    if "answered_by" in result:
        billed = sum(v["billed_seconds"] for v in result["answered_by"].values())
        rows += [("billed seconds", f"{billed:,}"), ("billing anomalies", f"{result['billing_anomalies']['count']:,}")]
    if result.get("empty_columns"):
        rows.append(("empty columns", ", ".join(result["empty_columns"])))
    return rows


def build_file_report(index: int, export: ExportFile, result: Json, con: duckdb.DuckDBPyConnection) -> FileReport:
    """The sections of one file's report, from its metrics and one more aggregate query."""
    if export.format is ExportFormat.ALTUR_CALLS:
        sections = _call_sections(result, *call_activity_and_anomalies(export, con, ANOMALY_ROWS))
    elif export.format is ExportFormat.CONNECTLY_SENDOUT:
        sections = _sendout_sections(result, activity(export, con))
    else:
        sections = _contact_sections(result, activity(export, con))
    return FileReport(
        f"file-{index}", export.label or export.path.name, export.format.value, _summary(result), sections
    )


def _figure_json(figure: Json) -> str:
    # "</" would end the inline <script> early; JSON allows the escaped form.
    return json.dumps(figure, ensure_ascii=False, separators=(",", ":")).replace("</", "<\\/")


def render_report(files: list[FileReport], generated_at: datetime | None = None) -> str:
    """The report's HTML text: one page, plotly.js inlined from the installed wheel."""
    from plotly.offline import get_plotlyjs

    env = Environment(loader=PackageLoader("herald.analytics", "templates"), autoescape=select_autoescape(["j2"]))
    env.filters["figure_json"] = _figure_json
    template = env.get_template("report.html.j2")
    return template.render(
        files=files,
        plotly_js=get_plotlyjs(),
        config=json.dumps(PLOTLY_CONFIG),
        generated_at=(generated_at or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


def write_report(path: Path, exports: list[ExportFile], results: list[Json], con: duckdb.DuckDBPyConnection) -> None:
    """Write the HTML report of these files (their metrics already computed) to `path`."""
    files = [build_file_report(i, e, r, con) for i, (e, r) in enumerate(zip(exports, results, strict=True))]
    path.write_text(render_report(files), encoding="utf-8")
