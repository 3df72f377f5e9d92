"""The command line's shared fixture: a runner on a fresh SQLite database in the test's own folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from herald.cli import app


@pytest.fixture
def herald(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """`herald init` done in an empty folder (the working directory) with HERALD_DATABASE_URL pointing there."""
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0  # only init creates a database file
    return runner
