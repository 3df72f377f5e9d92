"""`contacts import` accounts for every row, guards its rejects file, and can dry-run (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app

REPO = Path(__file__).resolve().parents[2]
CONTACTS = (
    "contact,name,context,plan\n"
    "5512345678,Ana,late,gold\n"
    "\n"
    ",,,\n"
    "5512345679,Luis\n"  # short: padded, and reported
    '=HYPERLINK("http://x"),Eve,x,y\n'  # invalid number that a spreadsheet would run
    "5512345678,Dup,x,y\n"
    ",NoNumber,x,y\n"
    "5512345670,Too,many,fields,here\n"
)


@pytest.fixture
def herald(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["campaign", "create", str(REPO / "examples" / "collections.yaml")]).exit_code == 0
    (tmp_path / "contacts.csv").write_text(CONTACTS, encoding="utf-8")
    return runner


def _json(runner: CliRunner, *args: str) -> dict[str, object]:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    value: dict[str, object] = json.loads(result.stdout)
    return value


def test_every_row_is_accounted_for(herald: CliRunner) -> None:
    report = _json(herald, "contacts", "import", "1", "contacts.csv", "--json")
    assert (report["rows"], report["added"], report["updated"], report["rejected"], report["blank"]) == (8, 2, 0, 4, 2)
    assert report["padded"] == {"count": 1, "lines": [5]}
    assert report["reject_reasons"] == {
        "INVALID_PHONE_NUMBER": 1,
        "DUPLICATE": 1,
        "MISSING_CONTACT": 1,
        "MALFORMED_ROW": 1,
    }
    result = herald.invoke(app, ["contacts", "import", "1", "contacts.csv", "--if-duplicate", "update"])
    assert result.exit_code == 0
    assert "8 rows: added 0, updated 2, rejected 4, blank 2\n" in result.stderr
    assert "1 row(s) had fewer fields than the header, read as empty: line 5" in result.stderr


def test_the_rejects_file_is_guarded_unless_raw(herald: CliRunner, tmp_path: Path) -> None:
    assert herald.invoke(app, ["contacts", "import", "1", "contacts.csv", "--rejects", "r.csv"]).exit_code == 0
    text = (tmp_path / "r.csv").read_text(encoding="utf-8")
    assert "'=HYPERLINK" in text and "\n=" not in text and ",=" not in text
    assert (
        herald.invoke(app, ["contacts", "import", "1", "contacts.csv", "--rejects", "raw.csv", "--raw"]).exit_code == 0
    )
    assert ',"=HYPERLINK(""http://x"")",' in (tmp_path / "raw.csv").read_text(encoding="utf-8")


def test_a_bad_rejects_path_is_refused_before_importing(herald: CliRunner) -> None:
    result = herald.invoke(app, ["contacts", "import", "1", "contacts.csv", "--rejects", "/missing/dir/r.csv"])
    assert result.exit_code == 1 and "the folder /missing/dir does not exist" in result.stderr
    assert _json(herald, "campaign", "show", "1", "--json")["contacts"] == 0


def test_dry_run_reports_the_same_and_writes_nothing(herald: CliRunner) -> None:
    dry = _json(herald, "contacts", "import", "1", "contacts.csv", "--dry-run", "--json")
    assert _json(herald, "campaign", "show", "1", "--json")["contacts"] == 0
    real = _json(herald, "contacts", "import", "1", "contacts.csv", "--json")
    assert {**dry, "dry_run": False} == real
    again = _json(herald, "contacts", "import", "1", "contacts.csv", "--dry-run", "--json")
    assert (again["added"], again["reject_reasons"]) == (
        0,
        {"INVALID_PHONE_NUMBER": 1, "DUPLICATE": 3, "MISSING_CONTACT": 1, "MALFORMED_ROW": 1},
    )
    update = _json(herald, "contacts", "import", "1", "contacts.csv", "--dry-run", "--if-duplicate", "update", "--json")
    assert (update["added"], update["updated"]) == (0, 2)
    result = herald.invoke(app, ["contacts", "import", "1", "contacts.csv", "--dry-run"])
    assert "would be added 0" in result.stderr and "dry run: nothing was written" in result.stderr


def test_a_campaign_without_a_phone_region_is_one_error(herald: CliRunner, tmp_path: Path) -> None:
    utc = tmp_path / "utc.yaml"
    utc.write_text("name: x\nchannel: phone_call\ntimezone: UTC\n", encoding="utf-8")
    assert herald.invoke(app, ["campaign", "create", str(utc)]).exit_code == 0
    for extra in ([], ["--dry-run"]):
        result = herald.invoke(app, ["contacts", "import", "2", "contacts.csv", *extra])
        assert result.exit_code == 1 and "set default_region; nothing was imported" in result.stderr, result.output
