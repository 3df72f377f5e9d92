"""`herald suppressions`: the business's do-not-call list, checked at import (issue 14)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from herald.cli import app


@pytest.fixture
def herald(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for args in (["init"], ["examples"], ["campaign", "create", "examples/collections.yaml"]):
        assert runner.invoke(app, args).exit_code == 0
    return runner


def _json(runner: CliRunner, *args: str, code: int = 0) -> Any:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout)


def test_add_list_import_remove(herald: CliRunner, tmp_path: Path) -> None:
    added = _json(herald, "suppressions", "add", "55 1234 5678", "+52 1 55 1234 5679", "--source", "complaint")
    assert added == {"added": ["+525512345678", "+525512345679"], "already": [], "invalid": []}
    again = _json(herald, "suppressions", "add", "+525512345678", "nope", code=1)
    assert again["already"] == ["+525512345678"] and again["invalid"][0]["value"] == "nope"
    listed = _json(herald, "suppressions", "list")
    assert [(e["contact"], e["source"]) for e in listed] == [
        ("+525512345678", "complaint"),
        ("+525512345679", "complaint"),
    ]
    (tmp_path / "dnc.csv").write_text("name;contact\nAna;5512345670\nLuis;\n", encoding="cp1252")
    imported = _json(herald, "suppressions", "import", "dnc.csv")
    assert imported["added"] == ["+525512345670"]
    (tmp_path / "plain.txt").write_text("5512345671\n5512345672\n", encoding="utf-8")
    assert _json(herald, "suppressions", "import", "plain.txt")["added"] == ["+525512345671", "+525512345672"]
    report = _json(herald, "contacts", "import", "1", "examples/contacts.csv")
    assert report["reject_reasons"] == {}
    contacts = tmp_path / "c.csv"
    contacts.write_text("contact,name,context\n5512345670,Ana,x\n5512345673,Eva,x\n", encoding="utf-8")
    report = _json(herald, "contacts", "import", "1", str(contacts))
    assert (report["added"], report["reject_reasons"]) == (1, {"SUPPRESSED": 1})
    removed = _json(herald, "suppressions", "remove", "55 1234 5670", "5599999999", code=1)
    assert removed == {"removed": ["+525512345670"], "not_listed": ["+525599999999"]}
    assert len(_json(herald, "suppressions", "list")) == 4


def test_every_suppressions_command_has_help(herald: CliRunner) -> None:
    for command in ("add", "import", "list", "remove"):
        assert "Usage" in herald.invoke(app, ["suppressions", command, "--help"]).stdout
