"""A stored campaign's analytics: its exports written to a temporary folder and analysed like files.

`herald analyze CAMPAIGN_ID`, the REST API's `/campaigns/{id}/analytics` and the console all read the same numbers,
because they all analyse the same export files.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

from herald.analytics.formats import open_export
from herald.analytics.metrics import Json, analyze
from herald.analytics.report import FileReport, build_file_report
from herald.analytics.sql import connect
from herald.exports.campaign_files import write_campaign_files
from herald.exports.kinds import ExportKind
from herald.store.queries import Store


def analyze_campaign(store: Store, campaign_id: int) -> dict[str, Json]:
    """The metrics of each export the campaign has, by export kind (contacts, calls, results, sendout, …)."""
    return {kind: result for kind, result, _ in _analysed(store, campaign_id, with_reports=False)}


def campaign_reports(store: Store, campaign_id: int) -> list[tuple[str, Json, FileReport]]:
    """(export kind, metrics, the report's charts and tables) of each export: what the console's Analytics tab
    shows, the same sections as `herald analyze --report`."""
    return [
        (kind, result, report) for kind, result, report in _analysed(store, campaign_id, with_reports=True) if report
    ]


def _analysed(store: Store, campaign_id: int, *, with_reports: bool) -> list[tuple[str, Json, FileReport | None]]:
    with tempfile.TemporaryDirectory(prefix=f"herald-analytics-{campaign_id}-") as folder:
        exported = write_campaign_files(store, campaign_id, Path(folder))
        con = connect()
        try:
            results: list[tuple[str, Json, FileReport | None]] = []
            for index, (kind, path) in enumerate(exported.paths.items()):
                export = open_export(path, as_results=kind is ExportKind.RESULTS)
                export = replace(export, label=f"campaign {campaign_id} {kind.value}", known_tags=exported.tags)
                metrics = analyze(export, con)
                report = build_file_report(index, export, metrics, con) if with_reports else None
                results.append((kind.value, {"file": export.title, **metrics}, report))
            return results
        finally:
            con.close()
