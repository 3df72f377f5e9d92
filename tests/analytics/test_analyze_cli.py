"""`herald analyze` through its command line: JSON shape, tables, and one clear error per bad file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app

runner = CliRunner()


def analyze(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["analyze", *args])
    return result.exit_code, result.stdout, result.stderr


def test_json_single_file_is_one_object(fixtures: Path) -> None:
    code, out, _ = analyze(str(fixtures / "calls_2026_07.csv"), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["format"] == "altur-calls"
    assert payload["file"] == str(fixtures / "calls_2026_07.csv")
    assert payload["billing_anomalies"]["count"] == 4


def test_json_several_files_is_a_list_in_argument_order(fixtures: Path) -> None:
    names = ["sendout.csv", "contacts_whatsapp.csv", "calls_seed_layout.csv"]
    code, out, _ = analyze(*(str(fixtures / n) for n in names), "--json")
    assert code == 0
    assert [item["format"] for item in json.loads(out)] == ["connectly-sendout", "altur-contacts", "altur-calls"]


def test_as_results_labels_contact_exports(fixtures: Path) -> None:
    code, out, _ = analyze(str(fixtures / "contacts_phone.csv"), "--as", "results", "--json")
    assert code == 0
    assert json.loads(out)["format"] == "altur-results"


def test_tables_without_json(fixtures: Path) -> None:
    code, out, _ = analyze(str(fixtures / "calls_2026_07.csv"), str(fixtures / "sendout.csv"))
    assert code == 0
    assert "Cost audit by answered_by" in out
    assert "cll_c" in out
    assert "Sendout funnel" in out
    assert "131026" in out


def write(path: Path, content: bytes) -> Path:
    path.write_bytes(content)
    return path


CALL_HEADER = (
    b"campaign_name,campaign_date,id,number_to,contact_name,type,status,answered_by,created_at,started_at,ended_at,"
    b"duration,billed_duration,recording_url\r\n"
)
SENDOUT_HEADER = (
    b"customer_external_id,business_id,campaign_name,sendout_id,cnt_session_id,sent_at,delivered_at,read_at,"
    b"opt_out_at,error_code,error_msg,button_clicks,link_clicks,input_variables,output_variables\r\n"
)


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("other.csv", b"order_id,amount\r\n1,2\r\n", "header matches no known export"),
        ("empty.csv", b"", "empty file"),
        ("utf16.csv", "contact,name,status\r\n".encode("utf-16"), "UTF-16"),
        ("binary.csv", b"\x00\x01\x02\x03", "binary"),
        ("ragged.csv", CALL_HEADER + b"C,2026-01-05,cll_1,+52,Ana,outbound,ended\r\n", "Expected Number of Columns"),
        (
            "unterminated.csv",
            CALL_HEADER + b'C,2026-01-05,cll_1,+52,"Ana,outbound,ended,human,,,,01:00,01:00,\r\n',
            "unterminated quote",
        ),
        (
            "badduration.csv",
            CALL_HEADER + b"C,2026-01-05,cll_1,+52,Ana,outbound,ended,human,,,,1m30s,01:30,\r\n",
            "column duration, e.g. '1m30s'",
        ),
        (
            "badseconds.csv",
            CALL_HEADER + b"C,2026-01-05,cll_1,+52,Ana,outbound,ended,human,,,,01:30,01:75,\r\n",
            "column billed_duration, e.g. '01:75'",
        ),
        ("badjson.csv", SENDOUT_HEADER + b"+52,b,c,s,x,,,,,,,[{oops,,,\r\n", "column button_clicks"),
        ("badtime.csv", SENDOUT_HEADER + b"+52,b,c,s,x,yesterday,,,,,,,,,\r\n", "column sent_at, e.g. 'yesterday'"),
        ("broken.parquet", b"PAR1 not really parquet", "broken Parquet file"),
    ],
)
def test_unknown_or_broken_file_gives_one_line_naming_it(
    tmp_path: Path, name: str, content: bytes, reason: str
) -> None:
    path = write(tmp_path / name, content)
    code, out, err = analyze(str(path), "--json")
    assert code == 2
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"herald analyze: {path}: ")
    assert reason in lines[0]


def test_missing_file(tmp_path: Path) -> None:
    code, _, err = analyze(str(tmp_path / "nope.csv"))
    assert code == 2
    assert err.strip() == f"herald analyze: {tmp_path / 'nope.csv'}: no such file (nor a campaign id)"


def test_as_results_on_a_call_export_is_refused(fixtures: Path) -> None:
    code, _, err = analyze(str(fixtures / "calls_seed_layout.csv"), "--as", "results")
    assert code == 2
    assert "--as results applies to contact/results exports" in err


def test_one_bad_file_among_good_ones_fails_the_command(fixtures: Path, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.csv", b"a,b\r\n1,2\r\n")
    code, out, err = analyze(str(fixtures / "sendout.csv"), str(bad), "--json")
    assert code == 2
    assert out == ""
    assert str(bad) in err
