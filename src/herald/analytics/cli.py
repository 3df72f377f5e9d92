"""`herald analyze`: read Altur / Connectly export files (or a campaign's exports) and say what happened and what it cost.

A thin command over `formats` (detection) and `metrics` (the definitions); `report` is imported only for `--report`
so that `--json` starts fast.
"""

from __future__ import annotations

import json
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import duckdb
import typer

from herald.analytics.formats import ExportFile, ExportFileError, as_utf8, open_export
from herald.analytics.metrics import Json, analyze
from herald.analytics.sql import connect
from herald.exports.kinds import ExportKind

if TYPE_CHECKING:
    from herald.exports.campaign_files import CampaignFiles


class AnalyzeAs(StrEnum):
    """Labels `--as` can put on a file."""

    RESULTS = "results"


class AnalyzeError(Exception):
    """One line for stderr; the command exits with code 2."""


def analyze_command(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH_OR_CAMPAIGN...", help="Export files (CSV or Parquet) or campaign ids."),
    ],
    json_output: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object per input (a list when several); rates are fractions."),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option("--report", metavar="FILE.html", dir_okay=False, help="Also write a self-contained HTML report."),
    ] = None,
    as_: Annotated[
        AnalyzeAs | None,
        typer.Option("--as", help="Label contact exports as a results export (altur-results)."),
    ] = None,
) -> None:
    """Analyse Altur or Connectly export files: status counts, reach, conversion, cost audit, sendout funnel.

    Each PATH is a CSV or Parquet export (altur-contacts, altur-calls or connectly-sendout, told by its header);
    an integer that is not a file is a campaign id, analysed from the database (HERALD_DATABASE_URL).
    Exit code 2 when a file is unknown or broken.
    """
    try:
        with ExitStack() as stack:
            exports = [open_input(source, as_ is AnalyzeAs.RESULTS, stack) for source in resolve_inputs(paths, stack)]
            con = connect()
            results = [analyze_or_fail(e, con) for e in exports]
            if report is not None:
                from herald.analytics.report import write_report

                try:
                    write_report(report, exports, results, con)
                except OSError as exc:
                    raise AnalyzeError(f"{report}: cannot write the report ({exc.strerror or exc})") from exc
    except AnalyzeError as exc:
        typer.echo(f"herald analyze: {exc}", err=True)
        raise typer.Exit(2) from None
    if json_output:
        payload: object = results[0] if len(results) == 1 else results
        sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2) + "\n")
    else:
        from herald.analytics.tables import print_tables
        from herald.console import plain_console

        console = plain_console()
        print_tables(console, results)
        if report is not None:
            console.print(f"Report written to {report}")


@dataclass(frozen=True, slots=True)
class Input:
    """One file to analyse; a campaign's export also carries its kind, campaign and agent tags."""

    path: Path
    as_results: bool = False
    label: str | None = None
    known_tags: tuple[str, ...] | None = None


def resolve_inputs(args: list[str], stack: ExitStack) -> list[Input]:
    """Files as given; an integer that is not an existing file becomes its campaign's export files.

    A campaign's files are titled "campaign N <kind>", its results export is labelled `altur-results`, and its
    agent's tags say which extra columns are tags.
    """
    files: list[Input] = []
    for arg in args:
        path = Path(arg)
        if path.exists() or not arg.isdigit():
            files.append(Input(path))
            continue
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"herald-campaign-{arg}-")))
        exported = campaign_files(int(arg), directory)
        files.extend(
            Input(file, kind is ExportKind.RESULTS, f"campaign {arg} {kind.value}", exported.tags)
            for kind, file in exported.paths.items()
        )
    return files


def campaign_files(campaign_id: int, directory: Path) -> CampaignFiles:
    """Write a campaign's export files into `directory` (the engine is imported only when a campaign is named)."""
    from herald.exports.campaign_files import export_campaign_files

    try:
        return export_campaign_files(campaign_id, directory)
    except Exception as exc:  # the engine's own errors (unknown campaign, database down) end the command cleanly
        reason = str(exc) or type(exc).__name__
        raise AnalyzeError(
            reason if f"campaign {campaign_id}" in reason else f"campaign {campaign_id}: {reason}"
        ) from exc


def open_input(source: Input, as_results: bool, stack: ExitStack) -> ExportFile:
    """Detect one input's format, re-encoding a non-UTF-8 CSV into a temporary copy the way `contacts import` reads it."""
    export = open_export_or_fail(source.path, as_results or source.as_results)
    export = replace(export, label=source.label, known_tags=source.known_tags)
    if export.encoding != "utf-8":
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="herald-utf8-")))
        try:
            export = as_utf8(export, directory)
        except ExportFileError as exc:
            raise AnalyzeError(f"{export.title}: {exc}") from exc
        except OSError as exc:
            raise AnalyzeError(f"{export.title}: cannot re-encode as UTF-8 ({exc.strerror or exc})") from exc
    return export


def open_export_or_fail(path: Path, as_results: bool) -> ExportFile:
    """Detect one file's format; a missing, unknown or unreadable file becomes an AnalyzeError naming it."""
    if not path.exists():
        raise AnalyzeError(f"{path}: no such file (nor a campaign id)")
    try:
        return open_export(path, as_results=as_results)
    except ExportFileError as exc:
        raise AnalyzeError(f"{path}: {exc}") from exc


def analyze_or_fail(export: ExportFile, con: duckdb.DuckDBPyConnection) -> Json:
    """The metrics of one file with its name first; a broken row becomes an AnalyzeError naming the file."""
    try:
        result = analyze(export, con)
    except ExportFileError as exc:
        raise AnalyzeError(f"{export.title}: {exc}") from exc
    return {"file": export.title, **result}
