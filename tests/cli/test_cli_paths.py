"""Output paths and campaign files: one clear line that keeps the offending text, never a traceback (issue 14)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from herald.cli import app

from ..conftest import migrated_sqlite

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def herald(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("HERALD_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert runner.invoke(app, ["init"]).exit_code == 0
    assert runner.invoke(app, ["campaign", "create", str(REPO / "examples" / "collections.yaml")]).exit_code == 0
    return runner


def _error(runner: CliRunner, args: list[str], code: int = 1) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == code, (result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_export_output_paths(herald: CliRunner, tmp_path: Path) -> None:
    assert "the folder /missing/dir does not exist" in _error(
        herald, ["export", "1", "contacts", "-o", "/missing/dir/x.csv"]
    )
    assert "is a folder" in _error(herald, ["export", "1", "contacts", "-o", str(tmp_path)])
    assert "give one with -o FILE" in _error(herald, ["export", "1", "calls", "--format", "parquet"])
    existing = tmp_path / "contacts.csv"
    existing.write_text("keep me", encoding="utf-8")
    assert "already exists; use --force" in _error(herald, ["export", "1", "contacts", "-o", str(existing)])
    assert existing.read_text(encoding="utf-8") == "keep me"
    result = herald.invoke(app, ["export", "1", "contacts", "-o", str(existing), "--force"])
    assert result.exit_code == 0 and existing.read_bytes().startswith(b"campaign_name,")


def test_demo_out_on_a_file(herald: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("x", encoding="utf-8")
    assert "is a file; give a folder" in _error(herald, ["demo", "--out", str(target)])
    assert "Not a directory" in _error(herald, ["demo", "--out", str(target / "sub")])
    assert target.read_text(encoding="utf-8") == "x"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"name: Cobran\xe7a\nchannel: phone_call\n", "not UTF-8 text: byte 12"),
        (b"name: x\nchannel: [phone_call\n", "line 3"),
        (b"name: x\n  channel: phone_call\nretries: {oops\n", "'  channel: phone_call'"),
        (b'{"name": "x", "channel": "phone_call"}}', "not YAML or JSON"),
        (b"- a\n- b\n", "a list, not a mapping"),
        (b"", "is empty"),
        (b"just text", "a str, not a mapping"),
    ],
)
def test_campaign_files_that_cannot_be_read(herald: CliRunner, tmp_path: Path, content: bytes, expected: str) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(content)
    assert expected in _error(herald, ["campaign", "create", str(bad)])
    assert herald.invoke(app, ["campaign", "list", "--json"]).stdout.count('"id"') == 1  # nothing was created


@given(data=st.binary(max_size=200))
@settings(max_examples=60, deadline=None)
def test_random_bytes_as_a_campaign_file(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "campaign.yaml"
        path.write_bytes(data)
        runner, db = CliRunner(), ["--db", migrated_sqlite(Path(folder) / "h.db")]
        result = runner.invoke(app, [*db, "campaign", "create", str(path)])
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        assert result.exit_code in (0, 1)
        if result.exit_code:
            assert result.stderr.startswith(f"error: {path}: ") and len(result.stderr.strip().splitlines()) == 1
