"""The CLI through Typer's runner on real SQLite files: the commands a user types, start to finish."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app

REPO = Path(__file__).resolve().parents[2]


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + str(result.exception)
    return result.stdout


def test_every_command_has_help(herald: CliRunner) -> None:
    for command in (
        [],
        ["init"],
        ["campaign"],
        ["campaign", "create"],
        ["campaign", "activate"],
        ["contacts", "import"],
        ["run"],
        ["export"],
        ["demo"],
        ["analyze"],
    ):
        output = _ok(herald, *command, "--help")
        assert "Usage" in output


def test_full_phone_workflow(herald: CliRunner, tmp_path: Path) -> None:
    _ok(herald, "init")
    campaign_id = _ok(herald, "campaign", "create", str(REPO / "examples" / "collections.yaml")).strip()
    assert campaign_id == "1"
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(
        "contact,name,context,id,plan\n55 1234 5678,Ana,late,A1,gold\n+52 55 1234 5678,Dup,x,A2,\nnope,Bad,x,A3,\n",
        encoding="utf-8",
    )
    report = json.loads(
        _ok(herald, "contacts", "import", "1", str(contacts), "--rejects", str(tmp_path / "rej.csv"), "--json")
    )
    assert (report["added"], report["rejected"]) == (1, 2)
    assert report["reject_reasons"] == {"DUPLICATE": 1, "INVALID_PHONE_NUMBER": 1}
    assert (tmp_path / "rej.csv").read_text(encoding="utf-8").startswith("line,reason,detail")
    shown = json.loads(_ok(herald, "campaign", "show", "1", "--json"))
    assert shown["status"] == "ready" and shown["contacts"] == 1
    assert json.loads(_ok(herald, "campaign", "activate", "1", "--json"))["status"] == "active"
    stats = json.loads(_ok(herald, "run", "--simulate", "--json"))
    assert stats["campaigns"] == {"1": "finished"} and stats["attempts"] >= 1
    _ok(herald, "export", "1", "contacts", "-o", str(tmp_path / "contacts-out.csv"))
    lines = (tmp_path / "contacts-out.csv").read_bytes().split(b"\r\n")
    assert lines[0].startswith(b"campaign_name,campaign_date,id,contact,") and b"+525512345678" in lines[1]
    _ok(
        herald,
        "export",
        "1",
        "calls",
        "--layout",
        "2026-07",
        "--format",
        "parquet",
        "-o",
        str(tmp_path / "calls.parquet"),
    )
    assert (tmp_path / "calls.parquet").stat().st_size > 0
    listed = json.loads(_ok(herald, "campaign", "list", "--json"))
    assert [c["status"] for c in listed] == ["finished"]


def test_reimport_with_update_overwrites_across_store_chunks(herald: CliRunner, tmp_path: Path) -> None:
    # More rows than the store writes per chunk (10,000), so new and updated rows straddle chunk boundaries.
    _ok(herald, "campaign", "create", str(REPO / "examples" / "collections.yaml"))
    numbers = [f"55{index:08d}" for index in range(10_050)]
    first = tmp_path / "first.csv"
    first.write_text("contact,name,context\n" + "".join(f"{n},Old {n},c\n" for n in numbers[:10_020]), "utf-8")
    assert json.loads(_ok(herald, "contacts", "import", "1", str(first), "--json"))["added"] == 10_020
    second = tmp_path / "second.csv"
    second.write_text("contact,name,context\n" + "".join(f"{n},New {n},d\n" for n in numbers[9_990:]), "utf-8")
    report = json.loads(_ok(herald, "contacts", "import", "1", str(second), "--if-duplicate", "update", "--json"))
    assert (report["added"], report["updated"], report["rejected"]) == (30, 30, 0)
    _ok(herald, "export", "1", "contacts", "-o", str(tmp_path / "out.csv"))
    rows = (tmp_path / "out.csv").read_bytes().decode("utf-8").split("\r\n")[1:-1]
    names = {row.split(",")[3]: row.split(",")[4] for row in rows}
    assert len(names) == 10_050
    assert names["+52" + numbers[0]] == "Old " + numbers[0]
    assert names["+52" + numbers[9_989]] == "Old " + numbers[9_989]
    assert all(names["+52" + n] == "New " + n for n in numbers[9_990:])


def test_a_file_broken_after_many_rows_imports_nothing(herald: CliRunner, tmp_path: Path) -> None:
    # Rows are written while the file is read; a broken record past the first chunks must roll them all back.
    _ok(herald, "campaign", "create", str(REPO / "examples" / "collections.yaml"))
    good = "".join(f"55{index:08d},Name {index},c\n" for index in range(25_000))
    broken = tmp_path / "broken.csv"
    broken.write_text("contact,name,context\n" + good + '5599999999,"unclosed,c\n', "utf-8")
    result = herald.invoke(app, ["contacts", "import", "1", str(broken)])
    assert result.exit_code == 1 and "line 25002" in result.stderr and "nothing was imported" in result.stderr
    shown = json.loads(_ok(herald, "campaign", "show", "1", "--json"))
    assert (shown["contacts"], shown["status"]) == (0, "pending")
    fine = tmp_path / "fine.csv"
    fine.write_text("contact,name,context\n" + good, "utf-8")
    assert json.loads(_ok(herald, "contacts", "import", "1", str(fine), "--json"))["added"] == 25_000
    assert json.loads(_ok(herald, "campaign", "show", "1", "--json"))["status"] == "ready"


def test_invalid_transition_is_refused_with_valid_targets(herald: CliRunner) -> None:
    _ok(herald, "campaign", "create", str(REPO / "examples" / "collections.yaml"))
    result = herald.invoke(app, ["campaign", "resume", "1", "--json"])
    assert result.exit_code == 3
    body = json.loads(result.stdout)
    assert body == {"error": "INVALID_STATUS_TRANSITION", "current_status": "pending", "valid_targets": ["active"]}


def test_bad_inputs_get_one_clear_error(herald: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nchannel: phone_call\nretries: 9\nconcurrency_limit: 0\n", encoding="utf-8")
    result = herald.invoke(app, ["campaign", "create", str(bad)])
    assert result.exit_code == 1 and "retries" in result.stderr and "concurrency_limit" in result.stderr
    bad.write_text("name: x\nchannel: phone_call\ntemplate: t\n", encoding="utf-8")
    result = herald.invoke(app, ["campaign", "create", str(bad)])
    assert result.exit_code == 1 and "template cannot be set on a phone_call campaign" in result.stderr
    _ok(herald, "campaign", "create", str(REPO / "examples" / "collections.yaml"))
    binary = tmp_path / "contacts.csv"
    binary.write_bytes(b"\x00\x01\x02PK\x03\x04")
    result = herald.invoke(app, ["contacts", "import", "1", str(binary)])
    assert result.exit_code == 1 and "nothing was imported" in result.stderr
    missing = tmp_path / "missing.csv"
    missing.write_text("phone,name\n5512345678,Ana\n", encoding="utf-8")
    result = herald.invoke(app, ["contacts", "import", "1", str(missing)])
    assert result.exit_code == 1 and "contact" in result.stderr
    assert json.loads(_ok(herald, "campaign", "show", "1", "--json"))["contacts"] == 0
    result = herald.invoke(app, ["campaign", "show", "99"])
    assert result.exit_code == 1 and "campaign 99 does not exist" in result.stderr
    result = herald.invoke(app, ["export", "1", "sendout"])
    assert result.exit_code == 1 and "no sendout export" in result.stderr


def test_demo_json_and_same_seed_same_bytes(herald: CliRunner, tmp_path: Path) -> None:
    first = json.loads(_ok(herald, "demo", "--contacts", "30", "--seed", "5", "--out", str(tmp_path / "a"), "--json"))
    _ok(herald, "demo", "--contacts", "30", "--seed", "5", "--out", str(tmp_path / "b"), "--json")
    campaign = first["campaign"]
    assert campaign["channel"] == "phone_call" and campaign["cycles"]["enabled"] is True
    assert campaign["cycles"]["max_iterations"] >= 2 and len(campaign["tags"]) >= 2 and len(campaign["fields"]) >= 3
    assert first["counts"]["contacts"] == 30 and first["counts"]["campaign_status"] == "finished"
    for name in ("contacts", "calls", "results", "recordings"):
        assert Path(first["outputs"][name]).read_bytes() == (tmp_path / "b" / f"{name}.csv").read_bytes()
    report = Path(first["outputs"]["report"]).read_text(encoding="utf-8")
    assert report.lstrip().lower().startswith("<!doctype html")
    assert re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?https?://", report) is None


def test_whatsapp_demo(herald: CliRunner, tmp_path: Path) -> None:
    out = json.loads(
        _ok(herald, "demo", "--channel", "whatsapp", "--contacts", "25", "--out", str(tmp_path / "w"), "--json")
    )
    assert set(out["outputs"]) == {"contacts", "results", "sendout", "report", "database"}
    header = (tmp_path / "w" / "sendout.csv").read_bytes().split(b"\r\n")[0]
    assert header == (
        b"customer_external_id,business_id,campaign_name,sendout_id,cnt_session_id,sent_at,delivered_at,read_at,"
        b"opt_out_at,error_code,error_msg,button_clicks,link_clicks,input_variables,output_variables"
    )


def test_analyze_a_campaign_from_the_database(
    herald: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _ok(herald, "demo", "--contacts", "20", "--out", str(tmp_path / "d"))
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'd' / 'herald.db'}")
    results = json.loads(_ok(herald, "analyze", "1", "--json"))
    # All four exports of the campaign: contacts, calls, results (labelled altur-results), recordings (analysed as calls).
    assert [result["format"] for result in results] == [
        "altur-contacts",
        "altur-calls",
        "altur-results",
        "altur-calls",
    ]
    by_format = {result["format"]: result for result in results[:2]}
    assert by_format["altur-contacts"]["contacts"] == 20
    with (tmp_path / "d" / "calls.csv").open(encoding="utf-8") as handle:
        assert by_format["altur-calls"]["calls"] == sum(1 for _ in handle) - 1
    assert by_format["altur-calls"]["billing_anomalies"]["count"] == 0


def test_run_once_takes_a_single_step(herald: CliRunner, tmp_path: Path) -> None:
    _ok(herald, "campaign", "create", str(REPO / "examples" / "collections.yaml"))
    result = herald.invoke(app, ["contacts", "import", "1", "-"])
    assert result.exit_code != 0  # a file path is required; '-' is not a file
    idle = json.loads(_ok(herald, "run", "--simulate", "--once", "--json"))
    assert idle["attempts"] == 0 and idle["campaigns"] == {"1": "pending"} and "no contacts" in idle["idle"]
    # Always open (no calling hours), so the step does not depend on today's date.
    (tmp_path / "open.yaml").write_text("name: Open\nchannel: phone_call\nconcurrency_limit: 10\n")
    _ok(herald, "campaign", "create", str(tmp_path / "open.yaml"))
    contacts = tmp_path / "few.csv"
    contacts.write_text("contact,name,context\n" + "".join(f"+52551234{i:04d},P {i},c\n" for i in range(30)))
    _ok(herald, "contacts", "import", "2", str(contacts))
    _ok(herald, "campaign", "activate", "2")
    stats = json.loads(_ok(herald, "run", "--simulate", "--once", "--json", "-c", "2"))
    # One step: the campaign's concurrency_limit (10) of calls placed, nothing more.
    assert stats["steps"] == 1 and stats["attempts"] == 10 and stats["campaigns"] == {"2": "active"}
