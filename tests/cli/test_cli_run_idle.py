"""`herald run` says why it has nothing to do instead of reporting 0 attempts."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    made = CliRunner()
    for args in (["init"], ["examples"]):
        assert made.invoke(app, args).exit_code == 0
    return made


def test_run_names_a_campaign_that_does_not_exist(runner: CliRunner) -> None:
    result = runner.invoke(app, ["run", "--simulate", "-c", "999"])
    assert result.exit_code == 1
    assert "no campaign 999" in result.output


@pytest.mark.parametrize("simulate", [["--simulate"], []])
def test_run_says_why_nothing_runs(runner: CliRunner, simulate: list[str]) -> None:
    assert "there are no campaigns" in runner.invoke(app, ["run", *simulate]).output
    assert runner.invoke(app, ["campaign", "create", "examples/collections.yaml"]).exit_code == 0
    assert "has no contacts yet" in runner.invoke(app, ["run", *simulate]).output
    assert runner.invoke(app, ["contacts", "import", "1", "examples/contacts.csv"]).exit_code == 0
    assert "campaign activate 1" in runner.invoke(app, ["run", *simulate]).output
    for action in ("activate", "pause"):
        assert runner.invoke(app, ["campaign", action, "1"]).exit_code == 0
    result = runner.invoke(app, ["run", *simulate, "--json"])
    assert result.exit_code == 0
    assert "is paused: `herald campaign resume 1`" in result.output
    assert '"attempts": 0' in result.stdout


def test_a_live_run_outside_calling_hours_says_when_they_open(runner: CliRunner, tmp_path: Path) -> None:
    # Open one minute a week, on a day that is not today, so the run is outside its hours whenever the test runs.
    from datetime import UTC, datetime, timedelta

    days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    other_day = days[(datetime.now(UTC) + timedelta(days=3)).weekday()]
    (tmp_path / "closed.yaml").write_text(
        "name: Closed\nchannel: phone_call\ntimezone: America/Mexico_City\n"
        f"scheduling: {{{other_day}: {{startTime: '10:00', stopTime: '10:01', active: true}}}}\n"
    )
    assert runner.invoke(app, ["campaign", "create", "closed.yaml"]).exit_code == 0
    assert runner.invoke(app, ["contacts", "import", "1", "examples/contacts.csv"]).exit_code == 0
    assert runner.invoke(app, ["campaign", "activate", "1"]).exit_code == 0
    result = runner.invoke(app, ["run", "--once"])
    assert result.exit_code == 0, result.output
    assert "waiting: outside calling hours: campaign 1 opens " in result.output
    assert "10:00 CST" in result.output
