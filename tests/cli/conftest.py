"""The command line's shared fixture: a runner on a fresh SQLite database in the test's own folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from ..conftest import migrated_sqlite


@pytest.fixture
def herald(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    """A migrated database (as `herald init` leaves it) in an empty folder, the working directory, with
    HERALD_DATABASE_URL pointing there."""
    monkeypatch.setenv("HERALD_DATABASE_URL", migrated_sqlite(tmp_path / "cli.db"))
    monkeypatch.chdir(tmp_path)
    return CliRunner()
