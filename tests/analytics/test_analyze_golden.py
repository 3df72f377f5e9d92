"""Golden tests: every metric definition of `herald analyze` on small hand-made export files."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from herald.analytics.formats import ExportFormat, open_export
from herald.analytics.metrics import analyze


def run(path: Path, as_results: bool = False) -> dict[str, object]:
    return analyze(open_export(path, as_results=as_results))


def test_phone_contact_export_bom_crlf_quoted_newlines(fixtures: Path) -> None:
    assert run(fixtures / "contacts_phone.csv") == {
        "format": "altur-contacts",
        "channel": "phone_call",
        "contacts": 6,
        "status_counts": {"answered": 1, "converted": 2, "failed": 1, "queue": 1, "voicemail": 1},
        "reach": {"count": 3, "rate": 0.5},
        "conversion": {"count": 2, "rate": 0.3333},
        "with_extracted_data": 2,
        "tags": {"interested": 2, "callback": 2},
        "fields": ["email", "plan"],
        "empty_columns": [],
        "calls": 7,
        # 02:05 + 125:07 (minutes past 59) + 0:00:10 (H:MM:SS) + 0 + blank + 45 (plain seconds)
        "billed_seconds": 125 + 7507 + 10 + 0 + 0 + 45,
    }


def test_whatsapp_contact_export_counts_legacy_acepted_as_accepted(fixtures: Path) -> None:
    result = run(fixtures / "contacts_whatsapp.csv")
    assert result["channel"] == "whatsapp"
    assert result["status_counts"] == {
        "accepted": 2,
        "converted": 1,
        "delivered": 1,
        "failed": 1,
        "queue": 1,
        "read": 1,
        "rejected": 1,
        "sent": 1,
    }
    # delivered + read + accepted (one spelled `acepted`) + converted
    assert result["reach"] == {"count": 5, "rate": 0.5556}
    assert result["conversion"] == {"count": 1, "rate": 0.1111}
    assert result["tags"] == {"opted_in": 3}
    assert result["with_extracted_data"] == 2
    assert result["calls"] == 0
    assert result["billed_seconds"] == 0


def test_results_label(fixtures: Path) -> None:
    assert run(fixtures / "contacts_phone.csv", as_results=True)["format"] == "altur-results"


def test_call_export_2026_07_layout_cost_audit_and_anomalies(fixtures: Path) -> None:
    assert run(fixtures / "calls_2026_07.csv") == {
        "format": "altur-calls",
        "calls": 13,
        "status_counts": {"busy": 1, "ended": 10, "failed": 1, "no-answer": 1},
        "answered_by": {
            "human": {"calls": 4, "duration_seconds": 125 + 7507 + 60 + 3600, "billed_seconds": 125 + 7507 + 59 + 3600},
            "machine": {"calls": 3, "duration_seconds": 63, "billed_seconds": 38},
            "unknown": {"calls": 3, "duration_seconds": 120, "billed_seconds": 65},
            "none": {"calls": 3, "duration_seconds": 0, "billed_seconds": 7},
        },
        # c: human billed < duration; f: machine past the 5 s cap; i: unknown equal to neither; k: unanswered billed
        "billing_anomalies": {"count": 4, "ids": ["cll_c", "cll_f", "cll_i", "cll_k"]},
    }


def test_call_export_seed_layout(fixtures: Path) -> None:
    result = run(fixtures / "calls_seed_layout.csv")
    assert result["calls"] == 3
    assert result["billing_anomalies"] == {"count": 1, "ids": ["cll_2"]}
    assert result["answered_by"]["machine"] == {"calls": 1, "duration_seconds": 20, "billed_seconds": 20}


def test_sendout_funnel_errors_clicks_and_time_to_read(fixtures: Path) -> None:
    assert run(fixtures / "sendout.csv") == {
        "format": "connectly-sendout",
        "recipients": 8,
        "sent": 6,  # rows 1,2,3,5,8 have sent_at; row 6 only read_at
        "delivered": 5,  # rows 2 and 6 were read without a delivered receipt
        "read": 4,
        "opted_out": 1,
        "failed": 2,
        "clicked": 3,  # an empty array `[]` is no click
        "errors": {"131026": 1, "131047": 1},
        "button_clicks": {"Yes": 2, "No": 1},
        # a single JSON object counts as one click; a click without a name is `(unnamed)`
        "link_clicks": {"Click here": 2, "(unnamed)": 1},
        "rates": {
            "sent": 0.75,
            "delivered": 0.625,
            "read": 0.5,
            "clicked": 0.375,
            "opted_out": 0.125,
            "failed": 0.25,
        },
        "rates_over_sent": {"delivered": 0.8333, "read": 0.6667, "clicked": 0.5, "opted_out": 0.1667},
        # read - sent for rows with both: 60, 120, 30 s; linear interpolation between order statistics
        "time_to_read_seconds": {"count": 3, "p50": 60.0, "p90": 108.0, "p99": 118.8},
    }


@pytest.mark.parametrize(
    "name", ["contacts_phone.csv", "contacts_whatsapp.csv", "calls_2026_07.csv", "calls_seed_layout.csv", "sendout.csv"]
)
def test_parquet_gives_the_same_figures(fixtures: Path, tmp_path: Path, name: str) -> None:
    # pyarrow infers types (booleans, timestamps, integers), so this also checks the typed-column path. Durations
    # stay text as in Herald's Parquet exports: inferred, `02:05` would become the time of day 02:05:00.
    durations = {"duration": pa.string(), "billed_duration": pa.string()}
    table = pacsv.read_csv(fixtures / name, convert_options=pacsv.ConvertOptions(column_types=durations))
    target = tmp_path / name.replace(".csv", ".parquet")
    pq.write_table(table, target)
    parquet = open_export(target)
    assert parquet.storage == "parquet"
    assert analyze(parquet) == run(fixtures / name)


def test_empty_export_has_no_rates(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    path.write_text("campaign_name,campaign_date,id,contact,name,context,status\r\n", encoding="utf-8")
    result = run(path)
    assert result["contacts"] == 0
    assert result["reach"] == {"count": 0, "rate": None}
    assert result["channel"] == "unknown"


def test_detection_by_header(fixtures: Path) -> None:
    assert open_export(fixtures / "contacts_phone.csv").format is ExportFormat.ALTUR_CONTACTS
    assert open_export(fixtures / "calls_2026_07.csv").format is ExportFormat.ALTUR_CALLS
    assert open_export(fixtures / "sendout.csv").format is ExportFormat.CONNECTLY_SENDOUT
    phone = open_export(fixtures / "contacts_phone.csv")
    assert phone.extra_columns == ("interested", "callback", "email", "plan")
