"""Bad `--db` values: one clear line, a non-zero exit, no traceback, and no file created or changed (issue 14)."""

from __future__ import annotations

import sqlite3
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from herald.cli import app

READERS = (["campaign", "list"], ["campaign", "show", "1"], ["export", "1", "contacts"], ["run", "--once"])


def _fails(runner: CliRunner, args: list[str], expected: str, code: int = 1) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    assert expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("notaurl", "'notaurl' is not a database URL"),
        ("herald.db", "write sqlite:///herald.db"),
        ("mysql+nosuchdriver://u@h/db", "no driver"),
    ],
)
def test_a_value_that_is_not_a_usable_url(tmp_path: Path, url: str, expected: str) -> None:
    for command in (["init"], *READERS):
        _fails(CliRunner(), ["--db", url, *command], expected)
    assert list(tmp_path.iterdir()) == []


def test_a_mistyped_sqlite_path_creates_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for command in READERS:
        _fails(runner, ["--db", "sqlite:///herlad.db", *command], "no database at herlad.db; run `herald init`")
    assert not (tmp_path / "herlad.db").exists()
    _fails(runner, ["--db", "sqlite:///nowhere/x.db", "init"], "the folder nowhere does not exist")
    _fails(runner, ["--db", f"sqlite:///{tmp_path}", "campaign", "list"], "is a folder")
    result = runner.invoke(app, ["--db", "sqlite:///herald.db", "init"])
    assert result.exit_code == 0 and (tmp_path / "herald.db").exists()
    assert runner.invoke(app, ["--db", "sqlite:///herald.db", "campaign", "list"]).exit_code == 0


def test_the_environment_variable_is_checked_the_same_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'typo.db'}")
    _fails(CliRunner(), ["campaign", "list"], "no database at")
    _fails(CliRunner(), ["analyze", "1"], "no database at", code=2)  # analyze's code for an unusable input
    assert not (tmp_path / "typo.db").exists()


def test_an_empty_file_is_for_init_only(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.touch()
    _fails(CliRunner(), ["--db", f"sqlite:///{empty}", "campaign", "list"], "is empty, not a Herald database")
    assert CliRunner().invoke(app, ["--db", f"sqlite:///{empty}", "init"]).exit_code == 0


def test_another_applications_sqlite_file_is_left_alone(tmp_path: Path) -> None:
    other = tmp_path / "photos.db"
    with sqlite3.connect(other) as connection:
        connection.execute("CREATE TABLE albums (id INTEGER PRIMARY KEY, title TEXT)")
    before = other.read_bytes()
    for command in (["init"], *READERS):
        _fails(CliRunner(), ["--db", f"sqlite:///{other}", *command], "SQLite database of another application")
    assert other.read_bytes() == before


def test_an_unreachable_postgresql_server_is_reported_quickly() -> None:
    started = time.monotonic()
    _fails(CliRunner(), ["--db", "postgresql+psycopg://herald:secret@127.0.0.1:9/herald", "init"], "cannot reach")
    assert time.monotonic() - started < 10


def test_the_password_is_not_printed() -> None:
    error = _fails(CliRunner(), ["--db", "postgresql+psycopg://herald:s3cret@127.0.0.1:9/h", "campaign", "list"], "")
    assert "s3cret" not in error


@given(data=st.binary(min_size=1, max_size=300), sqlite_header=st.booleans())
@settings(max_examples=30, deadline=None)
def test_random_bytes_are_not_a_database(data: bytes, sqlite_header: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "random.db"
        path.write_bytes((b"SQLite format 3\x00" if sqlite_header else b"") + data)
        before = path.read_bytes()
        for command in (["init"], ["campaign", "list"]):
            result = CliRunner().invoke(app, ["--db", f"sqlite:///{path}", *command])
            assert result.exit_code == 1, (result.output, result.exception)
            assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
            assert result.stderr.startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
        assert path.read_bytes() == before
