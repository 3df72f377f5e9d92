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


# --- a campaign's own list (--campaign) and --business ---------------------------------------------------------------


def _contacts(tmp_path: Path, *numbers: str) -> str:
    path = tmp_path / "contacts.csv"
    path.write_text("contact,name,context\n" + "".join(f"{n},P{i},x\n" for i, n in enumerate(numbers)), "utf-8")
    return str(path)


def test_campaign_list_refuses_imports_into_that_campaign_only(herald: CliRunner, tmp_path: Path) -> None:
    assert herald.invoke(app, ["campaign", "create", "examples/collections.yaml"]).exit_code == 0  # campaign 2
    added = _json(herald, "suppressions", "add", "55 1234 5678", "--campaign", "1", "--source", "asked")
    assert added == {"added": ["+525512345678"], "already": [], "invalid": []}
    assert _json(herald, "suppressions", "list") == []  # the business-wide list is untouched
    listed = _json(herald, "suppressions", "list", "--campaign", "1")
    assert [(e["contact"], e["source"]) for e in listed] == [("+525512345678", "asked")]
    assert _json(herald, "suppressions", "list", "--campaign", "2") == []

    file = _contacts(tmp_path, "5512345678", "5512345679")
    dry = _json(herald, "contacts", "import", "1", file, "--dry-run")  # the dry run reads the same lists
    assert [(r["line"], r["reason"]) for r in dry["rejects"]] == [(2, "SUPPRESSED")]
    one = _json(herald, "contacts", "import", "1", file)
    assert (one["added"], one["reject_reasons"]) == (1, {"SUPPRESSED": 1})
    assert [(r["line"], r["reason"]) for r in one["rejects"]] == [(2, "SUPPRESSED")]
    two = _json(herald, "contacts", "import", "2", file)
    assert (two["added"], two["reject_reasons"]) == (2, {})


def test_adding_closes_the_contact_in_that_campaign_only(herald: CliRunner, tmp_path: Path) -> None:
    assert herald.invoke(app, ["campaign", "create", "examples/collections.yaml"]).exit_code == 0
    file = _contacts(tmp_path, "5512345678", "5512345679")
    for campaign in ("1", "2"):
        assert _json(herald, "contacts", "import", campaign, file)["added"] == 2
    _json(herald, "suppressions", "add", "+525512345678", "--campaign", "2")

    def closed(campaign: str) -> dict[str, bool]:
        return {c["contact"]: c["final"] for c in _json(herald, "contacts", "list", campaign)}

    assert closed("1") == {"+525512345678": False, "+525512345679": False}
    assert closed("2") == {"+525512345678": True, "+525512345679": False}


def test_campaign_list_remove_and_accounting(herald: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "dnc.csv").write_text("contact;name\n5512345670;Ana\n55 1234 5670;Ana again\nnope;X\n", "utf-8")
    imported = _json(herald, "suppressions", "import", "dnc.csv", "--campaign", "1", code=1)
    assert imported["added"] == ["+525512345670"]
    assert [(i["line"], i["value"]) for i in imported["invalid"]] == [(4, "nope")]
    again = _json(herald, "suppressions", "add", "5512345670", "5512345671", "--campaign", "1")
    assert (again["added"], again["already"]) == (["+525512345671"], ["+525512345670"])
    removed = _json(herald, "suppressions", "remove", "5512345670", "5599999999", "--campaign", "1", code=1)
    assert removed == {"removed": ["+525512345670"], "not_listed": ["+525599999999"]}
    assert [e["contact"] for e in _json(herald, "suppressions", "list", "--campaign", "1")] == ["+525512345671"]
    # Taken off the campaign's list, the number imports into the campaign again.
    assert _json(herald, "contacts", "import", "1", _contacts(tmp_path, "5512345670"))["added"] == 1


def test_business_option_scopes_the_list_and_the_campaign(herald: CliRunner) -> None:
    assert herald.invoke(app, ["business", "create", "globex"]).exit_code == 0
    _json(herald, "suppressions", "add", "5512345678", "--business", "globex")
    assert [e["contact"] for e in _json(herald, "suppressions", "list", "--business", "globex")] == ["+525512345678"]
    assert _json(herald, "suppressions", "list") == []
    missing = herald.invoke(app, ["suppressions", "list", "--business", "nobody"])
    assert missing.exit_code == 1 and "no business called 'nobody'" in missing.stderr
    foreign = herald.invoke(app, ["suppressions", "add", "5512345678", "--business", "globex", "--campaign", "1"])
    assert foreign.exit_code == 1 and "campaign 1 does not exist in business 'globex'" in foreign.stderr
    unknown = herald.invoke(app, ["suppressions", "list", "--campaign", "99"])
    assert unknown.exit_code == 1 and "campaign 99 does not exist" in unknown.stderr


def test_a_finished_campaigns_list_is_shown_but_not_edited(herald: CliRunner, tmp_path: Path) -> None:
    _json(herald, "suppressions", "add", "5512345678", "--campaign", "1")
    _json(herald, "contacts", "import", "1", _contacts(tmp_path, "5512345679"))
    assert herald.invoke(app, ["campaign", "activate", "1"]).exit_code == 0
    assert herald.invoke(app, ["run", "--simulate", "--seed", "3"]).exit_code == 0
    assert _json(herald, "campaign", "show", "1")["status"] == "finished"
    for args in (["add", "5512345670"], ["remove", "5512345678"]):
        refused = herald.invoke(app, ["suppressions", *args, "--campaign", "1"])
        assert refused.exit_code == 3 and "finished and read-only" in refused.stderr
    assert [e["contact"] for e in _json(herald, "suppressions", "list", "--campaign", "1")] == ["+525512345678"]


def test_help_names_the_campaign_and_business_options(herald: CliRunner) -> None:
    for command in ("add", "import", "list", "remove"):
        text = herald.invoke(app, ["suppressions", command, "--help"], terminal_width=200).stdout
        assert "--campaign" in text and "--business" in text
