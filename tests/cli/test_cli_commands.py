"""The commands people reach for (issue 14): --version, examples, contacts list/remove, calls list, campaign
validate/edit, and how far a campaign is in `campaign show`."""

from __future__ import annotations

import json
from importlib.metadata import version
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


def _ok(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output + str(result.exception)
    return result.stdout


def _json(runner: CliRunner, *args: str) -> Any:
    return json.loads(_ok(runner, *args, "--json"))


def test_every_new_command_has_help(herald: CliRunner) -> None:
    for command in (
        ["examples"],
        ["contacts", "list"],
        ["contacts", "remove"],
        ["calls"],
        ["calls", "list"],
        ["campaign", "validate"],
        ["campaign", "edit"],
    ):
        assert "Usage" in _ok(herald, *command, "--help")


def test_version(herald: CliRunner) -> None:
    assert _ok(herald, "--version") == f"herald {version('herald')}\n"


def test_examples_writes_the_files_and_refuses_to_overwrite(herald: CliRunner, tmp_path: Path) -> None:
    assert sorted(p.name for p in (tmp_path / "examples").iterdir()) == [
        "collections.yaml",
        "contacts.csv",
        "whatsapp-reminder.yaml",
    ]
    result = herald.invoke(app, ["examples"])
    assert result.exit_code == 1 and "use --force" in result.stderr
    written = _json(herald, "examples", "other")["files"]
    assert [Path(p).read_bytes() for p in written] == [
        (tmp_path / "examples" / Path(p).name).read_bytes() for p in written
    ]
    assert _json(herald, "campaign", "validate", "other/whatsapp-reminder.yaml")["channel"] == "whatsapp"


def test_contacts_list_filters_and_remove(herald: CliRunner) -> None:
    report = _json(herald, "contacts", "import", "1", "examples/contacts.csv")
    listed = _json(herald, "contacts", "list", "1")
    assert len(listed) == report["added"] == 20 and {c["status"] for c in listed} == {"queue"}
    first = listed[0]
    found = _json(herald, "contacts", "list", "1", "--search", first["name"].split()[0].upper())
    assert first in found and all(first["name"].split()[0] in c["name"] for c in found)
    assert _json(herald, "contacts", "list", "1", "--status", "converted") == []
    assert len(_json(herald, "contacts", "list", "1", "--limit", "3")) == 3
    table = herald.invoke(app, ["contacts", "list", "1", "--limit", "2"])
    assert first["contact"] in table.stdout and "18 more contacts" in table.stderr
    bad = herald.invoke(app, ["contacts", "list", "1", "--status", "happy"])
    assert bad.exit_code == 1 and "unknown status 'happy'" in bad.stderr
    removal = herald.invoke(app, ["contacts", "remove", "1", first["contact"], "+520000000000", "--json"])
    assert removal.exit_code == 1
    assert json.loads(removal.stdout) == {
        "removed": [first["contact"]],
        "kept": {"+520000000000": "no such contact in this campaign"},
    }
    assert len(_json(herald, "contacts", "list", "1")) == 19


def test_calls_list_and_progress_after_a_run(herald: CliRunner) -> None:
    _ok(herald, "contacts", "import", "1", "examples/contacts.csv")
    shown = _json(herald, "campaign", "show", "1")
    assert shown["progress"]["final"] == 0 and shown["progress"]["total"] == 20
    assert shown["progress"]["in_flight"] == 0 and shown["progress"]["next_due_at"] is not None
    _ok(herald, "campaign", "activate", "1")
    _ok(herald, "run", "--simulate")
    calls = _json(herald, "calls", "list", "1")
    assert calls and all(call["id"].startswith("cll_") for call in calls)
    exported = _ok(herald, "export", "1", "calls").splitlines()
    assert len(calls) == len(exported) - 1  # the export has a header
    shown = _json(herald, "campaign", "show", "1")
    assert shown["status"] == "finished"
    assert shown["progress"] | {"next_window_at": None, "calling_hours_open": None} == {
        "final": 20,
        "total": 20,
        "in_flight": 0,
        "next_due_at": None,
        "next_window_at": None,
        "calling_hours_open": None,
    }
    assert "progress: 20/20 final, 0 in flight" in _ok(herald, "campaign", "show", "1")
    removal = herald.invoke(app, ["contacts", "remove", "1", calls[0]["number_to"]])
    assert removal.exit_code == 3 and "finished and read-only" in removal.stderr


def test_calls_list_on_a_whatsapp_campaign(herald: CliRunner) -> None:
    _ok(herald, "campaign", "create", "examples/whatsapp-reminder.yaml")
    result = herald.invoke(app, ["calls", "list", "2"])
    assert result.exit_code == 1 and "sends messages, not calls" in result.stderr


def test_campaign_validate(herald: CliRunner, tmp_path: Path) -> None:
    assert _json(herald, "campaign", "validate", "examples/collections.yaml") == {
        "valid": True,
        "name": "Cobranza noviembre",
        "channel": "phone_call",
    }
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nchannel: phone_call\nretries: 9\n", encoding="utf-8")
    result = herald.invoke(app, ["campaign", "validate", str(bad), "--json"])
    assert result.exit_code == 1 and json.loads(result.stdout)["valid"] is False and "retries" in result.stderr
    assert len(_json(herald, "campaign", "list")) == 1


def test_campaign_edit(herald: CliRunner, tmp_path: Path) -> None:
    change = tmp_path / "change.yaml"
    change.write_text("name: Cobranza diciembre\nretries: 3\ncycles: {max_iterations: 4}\n", encoding="utf-8")
    edited = _json(herald, "campaign", "edit", "1", str(change))["config"]
    assert (edited["name"], edited["retries"], edited["cycles"]["max_iterations"]) == ("Cobranza diciembre", 3, 4)
    shown = _json(herald, "campaign", "show", "1")
    assert shown["name"] == "Cobranza diciembre" and shown["config"]["cycles"]["cooldown_minutes"] == 120
    for text, message in (
        ("channel: whatsapp\n", "cannot edit channel"),
        ("cycles: {mode: scheduled}\n", "cycles.mode are fixed"),
        ("retries: 9\n", "retries"),
        ("template: hola\n", "template cannot be set on a phone_call campaign"),
    ):
        change.write_text(text, encoding="utf-8")
        result = herald.invoke(app, ["campaign", "edit", "1", str(change)])
        assert result.exit_code == 1 and message in result.stderr, result.stderr
    assert _json(herald, "campaign", "show", "1")["config"] == shown["config"]
