"""User text that looks like Rich markup is printed as written, never parsed (issue 14).

Every field a user controls is fed markup-looking strings through the CLI runner: campaign names, contact cells,
file names, export cells and headers read by `analyze`. The command must succeed and show the text unchanged.
"""

from __future__ import annotations

import csv
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from herald.cli import app

from ..conftest import migrated_sqlite

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = yaml.safe_load((REPO / "examples" / "collections.yaml").read_text(encoding="utf-8"))

KNOWN = ["[/]", "Promo [/]", "Cobranza [enero] [Q4]", "[red]x[/red]", "[bold]", ":smile:", "[link=http://x]y[/link]"]
markupish = st.one_of(
    st.sampled_from(KNOWN),
    st.text(alphabet="[]/:=\\#@ab ", min_size=1, max_size=16),
).filter(lambda s: s.strip() != "")

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _squash(text: str) -> str:
    """Output without whitespace: a table may wrap a long cell, which must not count as a change."""
    return "".join(text.split())


@contextmanager
def _workspace() -> Iterator[tuple[CliRunner, Path, list[str]]]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder)
        runner, db = CliRunner(), ["--db", migrated_sqlite(path / "h.db")]
        yield runner, path, db


def _campaign_file(folder: Path, name: str, file_name: str = "campaign.json") -> Path:
    path = folder / file_name
    path.write_text(json.dumps({**EXAMPLE, "name": name}), encoding="utf-8")
    return path


@given(name=markupish)
@SETTINGS
def test_campaign_names_are_printed_as_written(name: str) -> None:
    with _workspace() as (runner, folder, db):
        created = runner.invoke(app, [*db, "campaign", "create", str(_campaign_file(folder, name))])
        assert created.exit_code == 0, created.output
        for command in (["campaign", "list"], ["campaign", "show", "1"]):
            result = runner.invoke(app, [*db, *command])
            assert result.exit_code == 0, result.output
            assert _squash(name.strip()) in _squash(result.stdout)
        assert json.loads(runner.invoke(app, [*db, "campaign", "show", "1", "--json"]).stdout)["name"] == name


@given(cell=markupish)
@SETTINGS
def test_contact_cells_are_printed_as_written(cell: str) -> None:
    with _workspace() as (runner, folder, db):
        runner.invoke(app, [*db, "campaign", "create", str(_campaign_file(folder, "c"))])
        contacts = folder / "contacts.csv"
        with contacts.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["contact", "name", "context", "extra"])
            writer.writerow(["5512345678", cell, cell, cell])
            writer.writerow([cell, cell, cell, cell])
        result = runner.invoke(app, [*db, "contacts", "import", "1", str(contacts)])
        assert result.exit_code == 0, result.output
        assert "added 1" in result.stderr
        assert _squash(repr(cell.strip())) in _squash(result.stderr)
        # A table folds long cells across lines and columns, so the text is compared in the JSON of the same command.
        for command in (["contacts", "list", "1"], ["contacts", "list", "1", "--search", cell]):
            listed = runner.invoke(app, [*db, *command])
            assert listed.exit_code == 0, listed.output
            rows = json.loads(runner.invoke(app, [*db, *command, "--json"]).stdout)
            assert [(row["name"], row["context"]) for row in rows] == [(cell.strip(), cell.strip())]


@given(text=markupish)
@SETTINGS
def test_export_cells_and_headers_are_analysed_as_written(text: str) -> None:
    with _workspace() as (runner, folder, _db):
        export = folder / "contacts.csv"
        with export.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["contact", "name", "status", f"tag {text}"])
            writer.writerow(["+525512345678", text, text, "True"])
        result = runner.invoke(app, ["analyze", str(export)])
        assert result.exit_code == 0, result.output
        assert _squash(text.strip()) in _squash(result.stdout)


@pytest.mark.parametrize("name", ["Promo [b]", "[x] [red]"])
def test_file_names_in_messages_are_printed_as_written(name: str) -> None:
    with _workspace() as (runner, folder, db):
        bad = folder / f"{name}.yaml"
        bad.write_text("name: x\nchannel: phone_call\nretries: 9\n", encoding="utf-8")
        result = runner.invoke(app, [*db, "campaign", "create", str(bad)])
        assert result.exit_code == 1 and f"{name}.yaml" in result.stderr
        result = runner.invoke(app, ["analyze", str(bad)])
        assert result.exit_code == 2 and f"{name}.yaml" in result.stderr


def test_brackets_in_a_name_are_kept() -> None:
    with _workspace() as (runner, folder, db):
        runner.invoke(app, [*db, "campaign", "create", str(_campaign_file(folder, "Cobranza [enero] [Q4]"))])
        shown = runner.invoke(app, [*db, "campaign", "show", "1"])
        assert "Cobranza [enero] [Q4] (#1" in shown.stdout
