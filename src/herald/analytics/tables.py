"""Rich tables for `herald analyze` without `--json`: the same figures as the JSON, laid out for people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from herald.analytics.metrics import Json


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.2f}%"


def _counts_table(title: str, counts: Mapping[str, int], total: int | None = None, key: str = "value") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(key)
    table.add_column("rows", justify="right")
    if total is not None:
        table.add_column("share", justify="right")
    for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        cells = [name or "(blank)", f"{n:,}"]
        if total is not None:
            cells.append(_pct(n / total if total else None))
        table.add_row(*cells)
    return table


def _summary_table(rows: list[tuple[str, str]]) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _contacts(result: Json) -> list[Any]:
    n = result["contacts"]
    summary = [
        ("channel", result["channel"]),
        ("contacts", f"{n:,}"),
        ("reach", f"{result['reach']['count']:,} ({_pct(result['reach']['rate'])})"),
        ("conversion", f"{result['conversion']['count']:,} ({_pct(result['conversion']['rate'])})"),
        ("with extracted data", f"{result['with_extracted_data']:,}"),
    ]
    if "calls" in result:
        summary.append(("calls", f"{result['calls']:,}"))
    if "billed_seconds" in result:
        summary.append(("billed seconds", f"{result['billed_seconds']:,}"))
    if result.get("empty_columns"):
        # Empty in every row: nothing tells a tag from an extracted field, so neither table counts them.
        summary.append(("empty columns", ", ".join(result["empty_columns"])))
    parts: list[Any] = [_summary_table(summary), _counts_table("Status", result["status_counts"], n, "status")]
    if result.get("tags"):
        parts.append(_counts_table("Tags (rows True)", result["tags"], n, "tag"))
    return parts


def _calls(result: Json) -> list[Any]:
    audit = Table(title="Cost audit by answered_by", title_justify="left")
    for column in ("answered_by", "calls", "duration s", "billed s"):
        audit.add_column(column, justify="left" if column == "answered_by" else "right")
    for key, row in result["answered_by"].items():
        audit.add_row(key, f"{row['calls']:,}", f"{row['duration_seconds']:,}", f"{row['billed_seconds']:,}")
    anomalies = result["billing_anomalies"]
    shown = ", ".join(anomalies["ids"][:10]) + (" …" if anomalies["count"] > 10 else "")
    summary = [("calls", f"{result['calls']:,}"), ("billing anomalies", f"{anomalies['count']:,}")]
    if anomalies["count"]:
        summary.append(("anomalous ids", shown))
    return [_summary_table(summary), _counts_table("Call status", result["status_counts"], result["calls"]), audit]


def _sendout(result: Json) -> list[Any]:
    funnel = Table(title="Sendout funnel", title_justify="left")
    for column in ("step", "rows", "of recipients", "of sent"):
        funnel.add_column(column, justify="left" if column == "step" else "right")
    for step in ("sent", "delivered", "read", "clicked", "opted_out", "failed"):
        funnel.add_row(
            step,
            f"{result[step]:,}",
            _pct(result["rates"][step]),
            _pct(result["rates_over_sent"].get(step)) if step in result["rates_over_sent"] else "",
        )
    ttr = result["time_to_read_seconds"]
    summary = [("recipients", f"{result['recipients']:,}"), ("read with both timestamps", f"{ttr['count']:,}")]
    summary += [(f"time to read {k}", f"{v:,.1f} s") for k, v in ttr.items() if k != "count" and v is not None]
    parts: list[Any] = [_summary_table(summary), funnel]
    if result["errors"]:
        parts.append(_counts_table("Error codes", result["errors"], result["recipients"], "error_code"))
    if result["button_clicks"]:
        parts.append(_counts_table("Button clicks", result["button_clicks"], key="button"))
    if result["link_clicks"]:
        parts.append(_counts_table("Link clicks", result["link_clicks"], key="link"))
    return parts


def print_tables(console: Console, results: list[Json]) -> None:
    """Print each file's figures as a titled panel of Rich tables.

    Cells hold values from the files (statuses, tag and button names), so `console` must not read markup
    (`herald.console.plain_console`).
    """
    for result in results:
        fmt = result["format"]
        if fmt == "altur-calls":
            parts = _calls(result)
        elif fmt == "connectly-sendout":
            parts = _sendout(result)
        else:
            parts = _contacts(result)
        # A Panel parses a str title as markup; file names are user text, so the title is a Text.
        console.print(Panel(Group(*parts), title=Text(f"{result['file']} · {fmt}"), title_align="left"))
