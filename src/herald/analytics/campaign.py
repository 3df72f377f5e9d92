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
from herald.analytics.sql import connect
from herald.exports.campaign_files import write_campaign_files
from herald.exports.kinds import ExportKind
from herald.store.queries import Store


def analyze_campaign(store: Store, campaign_id: int) -> dict[str, Json]:
    """The metrics of each export the campaign has, by export kind (contacts, calls, results, sendout, …)."""
    with tempfile.TemporaryDirectory(prefix=f"herald-analytics-{campaign_id}-") as folder:
        exported = write_campaign_files(store, campaign_id, Path(folder))
        con = connect()
        try:
            results: dict[str, Json] = {}
            for kind, path in exported.paths.items():
                export = open_export(path, as_results=kind is ExportKind.RESULTS)
                export = replace(export, label=f"campaign {campaign_id} {kind.value}", known_tags=exported.tags)
                results[kind.value] = {"file": export.title, **analyze(export, con)}
            return results
        finally:
            con.close()
