"""Herald's command line: each command is a few lines over the library layers."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from herald.analytics.cli import analyze_command
from herald.cli_forecast import register as register_forecast
from herald.cli_ops import register as register_ops
from herald.cli_support import err
from herald.cli_support import fail as _fail
from herald.cli_support import now as _now
from herald.cli_support import open_store as _store
from herald.cli_support import print_json as _print_json
from herald.cli_support import print_table as _table
from herald.cli_tenancy import register as register_tenancy
from herald.cli_users import register as register_users
from herald.cli_webhooks import register as register_webhooks
from herald.console import plain_console, styled
from herald.domain.statuses import Channel
from herald.exports.kinds import ExportKind

if TYPE_CHECKING:
    from herald.domain.campaign import CampaignConfig
    from herald.engine.runner import Engine
    from herald.imports import ImportResult
    from herald.imports.phones import PhoneNormalizer
    from herald.store.queries import Store
    from herald.store.records import Campaign

# The engine, store and pydantic load inside the commands that need them, so `herald analyze` and `--help` start fast.

app = typer.Typer(
    name="herald",
    help="Herald: outbound campaign engine for AI phone calls and WhatsApp.\n\n"
    "The database is HERALD_DATABASE_URL (default sqlite:///herald.db), or --db before the command.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
campaign_app = typer.Typer(help="Create, list, show and steer campaigns.", no_args_is_help=True)
contacts_app = typer.Typer(help="Load, list and remove the contacts of a campaign.", no_args_is_help=True)
calls_app = typer.Typer(help="The calls of a phone campaign.", no_args_is_help=True)
app.add_typer(campaign_app, name="campaign")
app.add_typer(contacts_app, name="contacts")
suppressions_app = typer.Typer(
    help="The do-not-call list: numbers no campaign of the business may contact.", no_args_is_help=True
)
app.add_typer(calls_app, name="calls")
app.add_typer(suppressions_app, name="suppressions")
app.command("analyze")(analyze_command)
register_tenancy(app)
register_webhooks(app)
register_ops(app)
register_forecast(app)
register_users(app)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"herald {version('herald')}")
        raise typer.Exit()


@app.callback()
def _root(
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL (overrides HERALD_DATABASE_URL).", show_default=False)
    ] = None,
    _show_version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print Herald's version and exit.")
    ] = False,
) -> None:
    """Herald: outbound campaign engine for AI phone calls and WhatsApp."""
    from herald.database import select

    select(db)


def _progress() -> Progress:
    # Rich shows nothing when stderr is not a terminal, so pipes and CI logs stay clean.
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )


@contextmanager
def _engine_progress(description: str) -> Iterator[Callable[[Engine], None]]:
    """A progress bar for an engine run: steps, the (virtual) time reached and the attempts made."""
    with _progress() as progress:
        task = progress.add_task(description, total=None, info="")

        def show(engine: Engine) -> None:
            info = f"{engine.clock.now():%Y-%m-%d %H:%M} · {engine.stats.attempts} attempts"
            progress.update(task, completed=engine.stats.steps, info=info)

        yield show


def _freeze_gc() -> None:
    """For long engine runs, called once at a command's start (process-wide, so never from library code).

    A run allocates many short-lived objects, so the cyclic GC runs often, and its full collections would scan every
    long-lived object (modules, SQLAlchemy, configurations) each time. Freezing moves what exists now out of its
    scans; those objects are still freed by reference counting.
    """
    import gc

    gc.freeze()


def _campaign_file(file: Path) -> CampaignConfig:
    """A campaign file read and validated; any problem (encoding, YAML, fields) ends the command with one line."""
    from herald.campaign_file import CampaignFileError, read_campaign_file

    try:
        return read_campaign_file(file)
    except CampaignFileError as error:
        raise _fail(f"{file}: {error}") from None


def _check_output(path: Path, *, force: bool) -> None:
    """Refuse an output path that cannot be written, before any work is done."""
    if path.is_dir():
        raise _fail(f"{path} is a folder; give a file name")
    if not path.parent.is_dir():
        raise _fail(f"cannot write {path}: the folder {path.parent} does not exist")
    if path.exists() and not force:
        raise _fail(f"{path} already exists; use --force to overwrite it")


# --- init ----------------------------------------------------------------------------------------------------------


@app.command()
def init() -> None:
    """Create the database (or bring its schema up to date)."""
    from sqlalchemy.engine import make_url

    from herald.database import selected_url

    with _store(create=True):
        pass
    err.print(f"database ready: {make_url(selected_url()).render_as_string(hide_password=True)}")


# --- campaigns -----------------------------------------------------------------------------------------------------


@campaign_app.command("create")
def campaign_create(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Campaign file (YAML or JSON).")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the new campaign as JSON.")] = False,
) -> None:
    """Create a campaign from a declarative file (channel, agent, retries, cycles, scheduling, provider...)."""
    from herald.engine.campaigns import create_campaign
    from herald.ids import IdFactory

    config = _campaign_file(file)
    with _store() as store:
        campaign_id = create_campaign(store, config, _now(), IdFactory())
    if json_output:
        _print_json({"id": campaign_id, "name": config.name, "channel": config.channel.value, "status": "pending"})
    else:
        typer.echo(campaign_id)


@campaign_app.command("list")
def campaign_list(json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List campaigns with their status and contact counts."""
    with _store() as store, store.read() as tx:
        rows = [
            {
                "id": c.id,
                "name": c.name,
                "channel": c.channel.value,
                "status": c.status.value,
                "archived": c.archived,
                "cycle": c.cycle_iteration,
                "contacts": tx.contact_count(c.id),
                "created_at": c.created_at.isoformat(),
            }
            for c in tx.campaigns()
        ]
    if json_output:
        _print_json(rows)
        return
    table = Table("id", "name", "channel", "status", "cycle", "contacts")
    for row in rows:
        status = f"{row['status']} (archived)" if row["archived"] else row["status"]
        table.add_row(
            str(row["id"]), str(row["name"]), str(row["channel"]), str(status), str(row["cycle"]), str(row["contacts"])
        )
    plain_console().print(table)


@campaign_app.command("show")
def campaign_show(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a campaign: status, cycle, settings and contacts per status."""
    from herald.domain.scheduling import next_open
    from herald.store.inspect import final_count

    now = _now()
    with _store() as store, store.read() as tx:
        campaign = tx.campaign(campaign_id)
        counts = tx.status_counts(campaign_id)
        final, in_flight, next_due = (
            final_count(tx, campaign_id),
            tx.inflight_count(campaign_id),
            tx.next_due_at(campaign_id),
        )
    scheduling = campaign.config.scheduling
    opens = next_open(scheduling.windows() if scheduling else None, campaign.config.zone, now)
    progress = {
        "final": final,
        "total": sum(counts.values()),
        "in_flight": in_flight,
        "next_due_at": next_due.isoformat() if next_due else None,
        "calling_hours_open": opens == now,
        "next_window_at": opens.isoformat() if opens else None,
    }
    info = {
        "id": campaign.id,
        "name": campaign.name,
        "channel": campaign.channel.value,
        "status": campaign.status.value,
        "archived": campaign.archived,
        "cycle_iteration": campaign.cycle_iteration,
        "next_cycle_at": campaign.next_cycle_at.isoformat() if campaign.next_cycle_at else None,
        "created_at": campaign.created_at.isoformat(),
        "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
        "ended_at": campaign.ended_at.isoformat() if campaign.ended_at else None,
        "contacts": sum(counts.values()),
        "status_counts": counts,
        "progress": progress,
        "config": campaign.config.model_dump(mode="json", exclude_none=True),
    }
    if json_output:
        _print_json(info)
        return
    console = plain_console()
    console.print(styled((campaign.name, "bold"), f" (#{campaign.id}, {campaign.channel}) — {campaign.status}"))
    console.print(f"cycle {campaign.cycle_iteration}, {info['contacts']} contacts")
    console.print(_progress_line(progress, campaign.config.zone, now))
    table = Table("status", "contacts")
    for status, count in counts.items():
        table.add_row(status, str(count))
    console.print(table)


def _progress_line(progress: dict[str, Any], zone: Any, now: datetime) -> str:
    """How far a campaign is, in words: final / total, in flight, next attempt, calling hours (campaign time)."""

    def local(iso: str) -> str:
        return datetime.fromisoformat(iso).astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    parts = [f"{progress['final']}/{progress['total']} final", f"{progress['in_flight']} in flight"]
    if progress["next_due_at"]:
        parts.append(f"next attempt due {local(progress['next_due_at'])}")
    if progress["calling_hours_open"]:
        parts.append("calling hours open now")
    elif progress["next_window_at"]:
        parts.append(f"calling hours open {local(progress['next_window_at'])}")
    else:
        parts.append("no calling hours ahead")
    return "progress: " + ", ".join(parts)


@campaign_app.command("validate")
def campaign_validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Campaign file (YAML or JSON).")],
    json_output: Annotated[
        bool, typer.Option("--json", help="Print {valid, name, channel} or {valid, error}.")
    ] = False,
) -> None:
    """Check a campaign file without creating anything; exit 1 with the problems when it is not valid."""
    from herald.campaign_file import CampaignFileError, read_campaign_file

    try:
        config = read_campaign_file(file)
    except CampaignFileError as error:
        if json_output:
            _print_json({"valid": False, "error": str(error)})
        raise _fail(f"{file}: {error}") from None
    if json_output:
        _print_json({"valid": True, "name": config.name, "channel": config.channel.value})
    else:
        err.print(f"{file}: valid {config.channel} campaign {config.name!r}")


#: The fields `campaign edit` may change: those of Altur's CampaignUpdate (PATCH /campaigns/{id}).
EDITABLE_FIELDS = (
    "name",
    "description",
    "timezone",
    "retries",
    "message_limit",
    "scheduling",
    "first_message",
    "template",
    "template_alt",
    "cycles",
)


@campaign_app.command("edit")
def campaign_edit(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON with only the fields to change.")
    ],
    json_output: Annotated[bool, typer.Option("--json", help="Print the campaign's new configuration.")] = False,
) -> None:
    """Change a campaign's name, description, timezone, retries, message_limit, scheduling, first_message,
    template, template_alt or cycles (as Altur's PATCH allows; cycles.enabled and cycles.mode are fixed).
    """
    from herald.campaign_file import CampaignFileError, read_campaign_document, validate
    from herald.domain.statuses import CampaignStatus

    try:
        changes = read_campaign_document(file)
    except CampaignFileError as error:
        raise _fail(f"{file}: {error}") from None
    refused = [key for key in changes if key not in EDITABLE_FIELDS]
    if refused:
        raise _fail(f"{file}: cannot edit {', '.join(refused)} (editable: {', '.join(EDITABLE_FIELDS)})")
    with _store() as store, store.tx() as tx:
        # Locked, and written only if its status is still the one read: an edit never overwrites a concurrent pause.
        campaign = tx.lock_campaign(campaign_id)
        if campaign.status is CampaignStatus.FINISHED:
            raise _fail(f"campaign {campaign_id} is finished and read-only", code=3)
        merged = campaign.config.model_dump(mode="json")
        for key, value in changes.items():
            if key == "cycles" and isinstance(value, dict) and isinstance(merged.get("cycles"), dict):
                fixed = [k for k in ("enabled", "mode") if k in value and value[k] != merged["cycles"].get(k)]
                if fixed:
                    raise _fail(f"{file}: cycles.{' and cycles.'.join(fixed)} are fixed when the campaign is created")
                value = {**merged["cycles"], **value}
            merged[key] = value
        try:
            config = validate(merged)
        except CampaignFileError as error:
            raise _fail(f"{file}: {error}") from None
        tx.update_campaign(campaign_id, campaign.status, name=config.name, config=config.model_dump(mode="json"))
    if json_output:
        _print_json({"id": campaign_id, "config": config.model_dump(mode="json", exclude_none=True)})
    else:
        err.print(f"campaign {campaign_id}: changed {', '.join(changes) or 'nothing'}")


class LifecycleAction(StrEnum):
    """User actions on a campaign."""

    activate = "activate"
    pause = "pause"
    resume = "resume"
    archive = "archive"


def _lifecycle(action: LifecycleAction) -> Any:
    def command(
        campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
        json_output: Annotated[bool, typer.Option("--json", help="Print the campaign status as JSON.")] = False,
    ) -> None:
        from herald.domain.lifecycle import InvalidTransition
        from herald.engine.campaigns import act

        with _store() as store:
            try:
                campaign = act(store, campaign_id, action.value, _now())
            except InvalidTransition as error:
                if json_output:
                    _print_json(
                        {
                            "error": "INVALID_STATUS_TRANSITION",
                            "current_status": error.current_status.value,
                            "valid_targets": [target.value for target in error.valid_targets],
                        }
                    )
                raise _fail(str(error), code=3) from None
        if json_output:
            _print_json({"id": campaign.id, "status": campaign.status.value, "archived": campaign.archived})
        else:
            err.print(f"campaign {campaign.id}: {campaign.status}{' (archived)' if campaign.archived else ''}")

    command.__doc__ = {
        "activate": "Start a pending/ready campaign, or start the next cycle of one in cooldown now.",
        "pause": "Pause an active campaign or one in cooldown (no-op when already paused).",
        "resume": "Resume a paused campaign (no-op when active).",
        "archive": "Mark a campaign archived (a flag; its status is kept).",
    }[action.value]
    return command


for _action in LifecycleAction:
    campaign_app.command(_action.value)(_lifecycle(_action))


# --- contacts ------------------------------------------------------------------------------------------------------


class IfDuplicate(StrEnum):
    """What to do with a number already in the campaign."""

    skip = "skip"
    update = "update"


@contacts_app.command("import")
def contacts_import(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Contact CSV (contact, name, context...).")],
    rejects: Annotated[
        Path | None, typer.Option("--rejects", help="Write rejected rows (line, reason, detail, values) here.")
    ] = None,
    if_duplicate: Annotated[
        IfDuplicate, typer.Option("--if-duplicate", help="skip: reject numbers already present; update: overwrite.")
    ] = IfDuplicate.skip,
    raw: Annotated[
        bool, typer.Option("--raw", help="Write the rejects file without the spreadsheet formula guard.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read and check the file, report everything, write nothing.")
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the import report as JSON.")] = False,
) -> None:
    """Import contacts from a CSV. Every rejected row is reported with its line and reason; nothing is lost.

    Required columns: contact, name, context. Optional: id, override_agent_name, override_agent_voice_id.
    Any other column becomes an input variable. Numbers are normalised to E.164 in the campaign's region.
    Every data row is counted once: added + updated + rejected + blank = rows.
    """
    from herald.engine.campaigns import CampaignFinished
    from herald.imports import ImportFileError, write_rejects

    if rejects is not None:
        _check_output(rejects, force=True)  # before the import, so a bad path cannot follow a saved import
    try:
        if dry_run:
            added, updated, result = _import_dry_run(campaign_id, file, if_duplicate.value)
        else:
            added, updated, result = _import(campaign_id, file, if_duplicate.value)
    except ImportFileError as error:
        raise _fail(f"{file}: {error}; nothing was imported") from None
    except CampaignFinished as error:
        raise _fail(str(error), code=3) from None
    except ValueError as error:  # a campaign whose time zone names no country and that sets no default_region
        raise _fail(f"campaign {campaign_id}: {error}; nothing was imported") from None
    if rejects is not None:
        write_rejects(rejects, result, guard=not raw)
    reasons: dict[str, int] = {}
    for reject in result.rejects:
        reasons[reject.reason] = reasons.get(reject.reason, 0) + 1
    summary = {
        "campaign_id": campaign_id,
        "dry_run": dry_run,
        "rows": result.records,
        "added": added,
        "updated": updated,
        "rejected": len(result.rejects),
        "blank": result.blank_lines,
        "padded": {"count": len(result.padded_lines), "lines": result.padded_lines[:1000]},
        "reject_reasons": reasons,
        "rejects": [{"line": r.line, "reason": r.reason, "detail": r.detail} for r in result.rejects[:1000]],
        "rejects_file": str(rejects) if rejects else None,
        "encoding": result.encoding,
        "delimiter": result.delimiter,
    }
    if json_output:
        _print_json(summary)
        return
    verb = "would be " if dry_run else ""
    err.print(
        f"{result.records} rows: {verb}added {added}, {verb}updated {updated}, rejected {len(result.rejects)}, "
        f"blank {result.blank_lines}" + (" (dry run: nothing was written)" if dry_run else "")
    )
    if result.padded_lines:
        lines = ", ".join(map(str, result.padded_lines[:10])) + (" …" if len(result.padded_lines) > 10 else "")
        err.print(f"  {len(result.padded_lines)} row(s) had fewer fields than the header, read as empty: line {lines}")
    for reject in result.rejects[:20]:
        err.print(f"  line {reject.line}: {reject.reason} — {reject.detail}")
    if len(result.rejects) > 20:
        hint = f" (all in {rejects})" if rejects else " (use --rejects FILE to keep them all)"
        err.print(f"  … and {len(result.rejects) - 20} more{hint}")


def _import(campaign_id: int, file: Path, if_duplicate: Literal["skip", "update"]) -> tuple[int, int, ImportResult]:
    """Import for real, with a progress bar in bytes; returns (added, updated, result)."""
    from herald.engine.campaigns import import_contacts

    with _store() as store, _progress() as progress:
        task = progress.add_task("importing", total=file.stat().st_size, info="bytes")
        report = import_contacts(
            store,
            campaign_id,
            file,
            _now(),
            if_duplicate=if_duplicate,
            progress=lambda done: progress.update(task, completed=done),
        )
    return report.added, report.updated, report.result


def _import_dry_run(
    campaign_id: int, file: Path, if_duplicate: Literal["skip", "update"]
) -> tuple[int, int, ImportResult]:
    """Read the file against the campaign's numbers and opt-outs as an import would, writing nothing."""
    from herald.domain.statuses import CampaignStatus
    from herald.engine.campaigns import CampaignFinished, default_region
    from herald.imports import read_contacts
    from herald.store.campaign_dnc import barred_numbers

    with _store() as store, store.tx() as tx:
        campaign = tx.campaign(campaign_id)
        if campaign.status is CampaignStatus.FINISHED:
            raise CampaignFinished(f"campaign {campaign_id} is finished and read-only")
        existing = tx.existing_numbers(campaign_id)
        suppressed = barred_numbers(tx, campaign.business_id, campaign_id)
    result = read_contacts(
        file,
        default_region=default_region(campaign.config),
        existing=existing,
        suppressed=suppressed,
        if_duplicate=if_duplicate,
    )
    updated = sum(1 for row in result.rows if row.update)
    return len(result.rows) - updated, updated, result


def _limited(rows: list[dict[str, Any]], limit: int | None, json_output: bool) -> tuple[list[dict[str, Any]], int]:
    """Rows to show and how many were left out: everything for --json, 50 for a table, unless --limit says."""
    cap = limit if limit is not None else (0 if json_output else 50)
    shown = rows if cap <= 0 else rows[:cap]
    return shown, len(rows) - len(shown)


LimitOption = Annotated[
    int | None, typer.Option("--limit", help="Rows to show (0 = all; default 50 in a table, all with --json).")
]


@contacts_app.command("list")
def contacts_list(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    status: Annotated[str | None, typer.Option("--status", help="Only contacts in this status.")] = None,
    search: Annotated[
        str | None, typer.Option("--search", help="Only contacts whose number, name, id or context contains this.")
    ] = None,
    limit: LimitOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List a campaign's contacts with their status, retries, calls and next due attempt."""
    from herald.domain.statuses import ContactStatus

    statuses = [s.value for s in ContactStatus]
    if status is not None and status not in statuses:
        raise _fail(f"unknown status {status!r} (one of: {', '.join(statuses)})")
    needle = search.strip().casefold() if search else None  # stored values are stripped at import too
    with _store() as store, store.tx() as tx:
        zone = tx.campaign(campaign_id).config.zone
        rows = [
            {
                "id": c.id,
                "contact": c.contact,
                "name": c.name,
                "external_id": c.external_id,
                "context": c.context,
                "status": c.state.status.value,
                "final": c.state.final,
                "retries": c.state.retries,
                "failed_retries": c.state.failed_retries,
                "calls": c.state.calls,
                "billed_seconds": c.state.billed_seconds,
                "follow_up": c.state.follow_up,
                "due_at": c.state.due_at.astimezone(zone).isoformat() if c.state.due_at else None,
                "in_flight": c.inflight_id is not None,
                "input_variables": c.input_variables,
            }
            for c in tx.all_contacts(campaign_id)
            if (status is None or c.state.status.value == status)
            and (
                needle is None
                or any(needle in (v or "").casefold() for v in (c.contact, c.name, c.external_id, c.context))
            )
        ]
    shown, left_out = _limited(rows, limit, json_output)
    if json_output:
        _print_json(shown)
        return
    # A table has room for minutes, not an ISO offset; --json keeps the full timestamp.
    brief = [{**row, "due_at": row["due_at"][:16].replace("T", " ") if row["due_at"] else None} for row in shown]
    _table(brief, ("id", "contact", "name", "status", "retries", "calls", "due_at"), left_out, "contacts")


@contacts_app.command("remove")
def contacts_remove(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    keys: Annotated[list[str], typer.Argument(metavar="CONTACT...", help="E.164 numbers or external ids.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print {removed, kept} as JSON.")] = False,
) -> None:
    """Remove contacts that were never called or messaged; exit 1 when any could not be removed (each says why)."""
    from herald.domain.statuses import CampaignStatus
    from herald.store.inspect import remove_contacts

    with _store() as store, store.tx() as tx:
        if tx.campaign(campaign_id).status is CampaignStatus.FINISHED:
            raise _fail(f"campaign {campaign_id} is finished and read-only", code=3)
        outcome = remove_contacts(tx, campaign_id, keys)
    if json_output:
        _print_json({"removed": outcome.removed, "kept": outcome.kept})
    else:
        err.print(f"removed {len(outcome.removed)}")
        for key, why in outcome.kept.items():
            err.print(f"  {key}: not removed, {why}")
    if outcome.kept:
        raise typer.Exit(1)


@calls_app.command("list")
def calls_list(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    limit: LimitOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON (the call export's columns).")] = False,
) -> None:
    """List a phone campaign's calls: the call export's rows (times in the campaign's time zone)."""
    from herald.exports.formats import ExportNotAvailable, header, rows

    with _store() as store, store.tx() as tx:
        campaign = tx.campaign(campaign_id)
        try:
            columns = header(campaign, ExportKind.CALLS, "classic")
            calls = [dict(zip(columns, row, strict=True)) for row in rows(tx, campaign, ExportKind.CALLS)]
        except ExportNotAvailable:
            raise _fail(
                f"campaign {campaign_id} is a {campaign.channel} campaign: it sends messages, not calls "
                f"(see `herald export {campaign_id} sendout`)"
            ) from None
    shown, left_out = _limited(calls, limit, json_output)
    if json_output:
        _print_json(shown)
        return
    _table(
        shown,
        ("id", "number_to", "contact_name", "status", "answered_by", "created_at", "duration", "billed_duration"),
        left_out,
        "calls",
    )


# --- suppressions --------------------------------------------------------------------------------------------------

RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region",
        help="Region for numbers written without a country code (ISO 3166, e.g. MX). "
        "Default: the campaign's region with --campaign, else MX.",
        show_default=False,
    ),
]
SourceOption = Annotated[str, typer.Option("--source", help="Where the entry comes from (kept with it).")]
BusinessOption = Annotated[str, typer.Option("--business", help="The business whose list this is (its name).")]
CampaignOption = Annotated[
    int | None,
    typer.Option(
        "--campaign",
        help="Edit or show this campaign's own list instead of the business-wide one "
        "(a finished campaign's list can be shown but not edited).",
        show_default=False,
    ),
]


def _dnc_scope(tx: Any, business: str, campaign_id: int | None, *, edit: bool) -> tuple[int, Campaign | None]:
    """The business id named by --business and, with --campaign, that campaign (of that business; for an edit,
    locked and not finished)."""
    from herald.domain.statuses import CampaignStatus
    from herald.engine.campaigns import DEFAULT_BUSINESS, default_business_id
    from herald.store.tenancy import business_named

    if business == DEFAULT_BUSINESS:
        business_id = default_business_id(tx, _now())  # made on first use, as every command line default is
    else:
        found = business_named(tx, business)
        if found is None:
            raise _fail(f"no business called {business!r} (see `herald business list`)")
        business_id = found.id
    if campaign_id is None:
        return business_id, None
    campaign = tx.lock_campaign(campaign_id) if edit else tx.campaign(campaign_id)
    if campaign.business_id != business_id:
        raise _fail(f"campaign {campaign_id} does not exist in business {business!r}")
    if edit and campaign.status is CampaignStatus.FINISHED:
        raise _fail(f"campaign {campaign_id} is finished and read-only", code=3)
    return business_id, campaign


def _normalizer(region: str | None, campaign_id: int | None) -> PhoneNormalizer:
    """Numbers are read as an import into the campaign reads them (its region), else in --region or MX."""
    from herald.engine.campaigns import default_region
    from herald.imports.phones import PhoneNormalizer

    try:
        if region is None and campaign_id is not None:
            with _store() as store, store.read() as tx:
                region = default_region(tx.campaign(campaign_id).config)
        return PhoneNormalizer(region or "MX")
    except ValueError as error:
        raise _fail(str(error)) from None


def _suppress(
    numbers: list[tuple[int, str]],
    region: str | None,
    source: str,
    json_output: bool,
    business: str,
    campaign_id: int | None,
) -> None:
    """Normalise (line, number) pairs as an import does, put the valid ones on the list, report the rest."""
    from herald.imports.numbers import check_numbers
    from herald.store.campaign_dnc import listed_numbers, suppress_in_campaign

    checked = check_numbers(numbers, _normalizer(region, campaign_id))
    valid, invalid = checked.valid, checked.invalid
    now = _now()
    with _store() as store, store.tx() as tx:
        business_id, campaign = _dnc_scope(tx, business, campaign_id, edit=True)
        if campaign is None:
            before = tx.suppressed_numbers(business_id, valid)
            for number in valid:
                tx.suppress(business_id, number, now, source)
        else:
            before = listed_numbers(tx, campaign.id, valid)
            for number in valid:
                suppress_in_campaign(tx, campaign.id, number, now, source)
    added = [n for n in valid if n not in before]
    if json_output:
        _print_json({"added": added, "already": sorted(before), "invalid": invalid})
    else:
        err.print(f"added {len(added)}, already listed {len(before)}, invalid {len(invalid)}")
        for item in invalid[:20]:
            err.print(f"  {item['line']}: {item['value']!r} is not a valid phone number: {item['reason']}")
    if invalid:
        raise typer.Exit(1)


@suppressions_app.command("add")
def suppressions_add(
    numbers: Annotated[list[str], typer.Argument(metavar="NUMBER...", help="Phone numbers, any format.")],
    source: SourceOption = "cli",
    region: RegionOption = None,
    business: BusinessOption = "default",
    campaign: CampaignOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print {added, already, invalid} as JSON.")] = False,
) -> None:
    """Put numbers on the do-not-call list; their contacts in every campaign of the business stop being contacted
    (with --campaign: on that campaign's own list, and only its contacts stop)."""
    _suppress(list(enumerate(numbers, start=1)), region, source, json_output, business, campaign)


@suppressions_app.command("import")
def suppressions_import(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV with a `contact` column, or one number a line.")
    ],
    source: SourceOption = "import",
    region: RegionOption = None,
    business: BusinessOption = "default",
    campaign: CampaignOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print {added, already, invalid} as JSON.")] = False,
) -> None:
    """Put every number of a file on the do-not-call list (read like a contact file: encoding and delimiter); with
    --campaign, on that campaign's own list."""
    from herald.imports import ImportFileError
    from herald.imports.decoding import decode
    from herald.imports.numbers import numbers_in

    try:
        text, _encoding = decode(file.read_bytes())
    except ImportFileError as error:
        raise _fail(f"{file}: {error}") from None
    _suppress(numbers_in(text), region, source, json_output, business, campaign)


@suppressions_app.command("list")
def suppressions_list(
    business: BusinessOption = "default",
    campaign: CampaignOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The do-not-call list (with --campaign: that campaign's own list) with the source and time of each entry."""
    from herald.store.campaign_dnc import campaign_suppressions
    from herald.store.inspect import suppressions

    with _store() as store, store.tx() as tx:
        business_id, found = _dnc_scope(tx, business, campaign, edit=False)
        listed = suppressions(tx, business_id) if found is None else campaign_suppressions(tx, found.id)
    rows = [{"contact": n, "since": at.isoformat(), "source": src} for n, at, src in listed]
    if json_output:
        _print_json(rows)
        return
    _table(rows, ("contact", "since", "source"), 0, "numbers")


@suppressions_app.command("remove")
def suppressions_remove(
    numbers: Annotated[list[str], typer.Argument(metavar="NUMBER...", help="Phone numbers, any format.")],
    region: RegionOption = None,
    business: BusinessOption = "default",
    campaign: CampaignOption = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print {removed, not_listed} as JSON.")] = False,
) -> None:
    """Take numbers off the do-not-call list, or with --campaign off that campaign's own list (contacts it already
    closed stay closed)."""
    from herald.store.campaign_dnc import unsuppress_in_campaign
    from herald.store.inspect import unsuppress

    normalize = _normalizer(region, campaign)
    wanted = [normalize.check(raw)[0] or raw.strip() for raw in numbers]
    with _store() as store, store.tx() as tx:
        business_id, found = _dnc_scope(tx, business, campaign, edit=True)
        removed = unsuppress(tx, business_id, wanted) if found is None else unsuppress_in_campaign(tx, found.id, wanted)
    missing = [n for n in wanted if n not in removed]
    if json_output:
        _print_json({"removed": removed, "not_listed": missing})
    else:
        err.print(f"removed {len(removed)}" + (f"; not on the list: {', '.join(missing)}" if missing else ""))
    if missing:
        raise typer.Exit(1)


# --- examples ------------------------------------------------------------------------------------------------------

EXAMPLE_CONTACTS = 20
EXAMPLE_SEED = 7  # the demo's default seed: the same sample file every time


@app.command()
def examples(
    directory: Annotated[Path, typer.Argument(help="Folder to write into (created if missing).")] = Path("examples"),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print the written paths as JSON.")] = False,
) -> None:
    """Write the example campaign files and a sample contacts CSV, so the README's steps work in any folder."""
    from importlib import resources

    from herald.demo import synthetic_contacts

    if directory.exists() and not directory.is_dir():
        raise _fail(f"{directory} is a file; give a folder")
    package = resources.files("herald.examples")
    contents = {name: package.joinpath(name).read_bytes() for name in ("collections.yaml", "whatsapp-reminder.yaml")}
    contents["contacts.csv"] = synthetic_contacts(EXAMPLE_CONTACTS, EXAMPLE_SEED)
    existing = [name for name in contents if (directory / name).exists()]
    if existing and not force:
        raise _fail(f"{', '.join(str(directory / n) for n in existing)} already exist(s); use --force to overwrite")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, data in contents.items():
            (directory / name).write_bytes(data)
    except OSError as error:
        raise _fail(f"cannot write into {directory}: {error.strerror or error}") from None
    paths = [str(directory / name) for name in contents]
    if json_output:
        _print_json({"files": paths})
    else:
        err.print("wrote " + ", ".join(paths))


# --- run -----------------------------------------------------------------------------------------------------------


@app.command()
def run(
    campaign: Annotated[
        list[int] | None, typer.Option("--campaign", "-c", help="Only these campaigns (default: all).")
    ] = None,
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Simulator provider on a virtual clock: days pass in seconds.")
    ] = False,
    until_finished: Annotated[
        bool, typer.Option("--until-finished/--once", help="Run until every campaign is finished, or one step.")
    ] = True,
    seed: Annotated[int, typer.Option("--seed", help="Simulator seed.")] = 0,
    json_output: Annotated[bool, typer.Option("--json", help="Print run statistics as JSON.")] = False,
) -> None:
    """Run active campaigns: dispatch attempts, apply provider events, retry and cycle until finished.

    With --simulate, the simulator on a virtual clock (one such run per database at a time, and none beside live
    workers). Without it, a live worker (as `herald worker`) that stops once the campaigns are finished.
    """
    from herald.engine.clock import VirtualClock
    from herald.engine.runner import Engine
    from herald.ids import IdFactory
    from herald.providers.simulator import Simulator

    _freeze_gc()
    with _store() as store:
        with store.tx() as tx:
            campaigns = [c for c in tx.campaigns() if not campaign or c.id in campaign]
            latest = tx.latest_activity()
        missing = sorted(set(campaign or ()) - {c.id for c in campaigns})
        if missing:
            raise _fail(f"no campaign {', '.join(map(str, missing))} (see `herald campaign list`)")
        idle = _idle_reason(campaigns)
        if idle is not None:
            err.print(f"nothing to run: {idle}")
            if json_output:
                _print_json({"attempts": 0, "idle": idle, "campaigns": {c.id: c.status.value for c in campaigns}})
            return
        if not simulate:
            _run_live(store, campaign, until_finished, json_output)
            return
        membership = _exclusive_simulation(store)
        try:
            # Virtual time never goes back: it starts after anything already recorded.
            clock = VirtualClock(max(_now(), latest or _now()))
            # Public ids stay random: seeded ids would repeat those of an earlier run in the same database.
            engine = Engine(store, Simulator(seed), clock, IdFactory())
            with _engine_progress("running") as show:
                stats = engine.run(
                    campaign or None,
                    max_steps=None if until_finished else 1,
                    progress=show,
                    # In the run's own transactions: a heartbeat thread's commits would make it reread its view.
                    on_batch=membership.beat,
                )
        finally:
            membership.close()
        with store.tx() as tx:
            states = {c.id: tx.campaign(c.id).status.value for c in campaigns}
    result = {
        "steps": stats.steps,
        "attempts": stats.attempts,
        "events": stats.events,
        "duplicate_events": stats.duplicate_events,
        "clock_start": stats.started_at.isoformat() if stats.started_at else None,
        "clock_end": stats.ended_at.isoformat() if stats.ended_at else None,
        "campaigns": states,
    }
    if json_output:
        _print_json(result)
    else:
        err.print(
            f"{stats.attempts} attempts, {stats.events} events; "
            + ", ".join(f"campaign {cid}: {status}" for cid, status in states.items())
        )


_WHY_NOT_RUNNING = {
    "pending": "has no contacts yet (`herald contacts import`)",
    "ready": "is ready: `herald campaign activate {id}` starts it",
    "inactive": "is paused: `herald campaign resume {id}`",
    "finished": "is finished",
}


def _idle_reason(campaigns: list[Any]) -> str | None:
    """Why a run would do nothing (no campaign, none running), or None when some campaign is running."""
    if not campaigns:
        return "there are no campaigns (`herald campaign create FILE`)"
    if any(c.status.value in ("active", "cooldown") for c in campaigns):
        return None
    return "; ".join(
        f"campaign {c.id} {_WHY_NOT_RUNNING.get(c.status.value, c.status.value).format(id=c.id)}" for c in campaigns
    )


def _exclusive_simulation(store: Store) -> Any:
    """Register this simulated run, refusing to start beside another one or beside live workers: virtual time is
    this process's own, so two clocks on one database cannot agree on what is due."""
    from herald.engine.clock import RealClock
    from herald.engine.worker import STALE_AFTER, Membership
    from herald.store import claims

    clock = RealClock()
    membership = Membership(store, "simulate", on_lost=lambda: None)
    with store.tx() as tx:
        others = [w for w in claims.alive(tx, clock.now() - STALE_AFTER) if w.id != membership.id]
    if others:
        membership.close("refused")
        who = ", ".join(
            f"{'herald run --simulate' if w.kind == 'simulate' else 'herald worker'} (pid {w.pid} on {w.host})"
            for w in others
        )
        raise _fail(
            f"another process is running campaigns on this database: {who}. A simulated run needs the database to "
            "itself; stop it or wait for it to finish (a killed process counts for 20 s after its last heartbeat)."
        )
    return membership


def _closed_hours(campaigns: list[Any], now: datetime) -> str | None:
    """When every active campaign's calling hours are closed now: when each opens next (else None)."""
    from herald.domain.scheduling import next_open
    from herald.engine.context import CampaignContext

    openings: list[str] = []
    for campaign in campaigns:
        if campaign.status.value == "cooldown":
            return None
        if campaign.status.value != "active":
            continue
        context = CampaignContext.of(campaign)
        if context.local_time:
            return None  # each contact keeps its own hours
        opening = next_open(context.window, context.zone, now)
        if opening == now:
            return None
        when = f"{opening.astimezone(context.zone):%Y-%m-%d %H:%M %Z}" if opening else "never (no open window)"
        openings.append(f"campaign {campaign.id} opens {when}")
    return "outside calling hours: " + "; ".join(openings) if openings else None


def _run_live(store: Store, campaign: list[int] | None, until_finished: bool, json_output: bool) -> None:
    from herald.engine.worker import Worker, describe

    with store.read() as tx:
        closed = _closed_hours([c for c in tx.campaigns() if not campaign or c.id in campaign], _now())
    if closed is not None:
        err.print(f"waiting: {closed}")
    worker = Worker(store, campaign_ids=campaign)
    _stop_on_signals(worker.stop)
    worker.register()
    try:
        while not worker.stopping:
            busy = worker.round()
            if not until_finished or worker.finished():
                break
            if not busy:
                time.sleep(worker.poll_seconds)
    finally:
        worker.close()
    with store.read() as tx:
        states = {c.id: c.status.value for c in tx.campaigns() if not campaign or c.id in campaign}
    result = {**describe(worker.stats), "campaigns": states}
    if json_output:
        _print_json(result)
    else:
        err.print(
            f"{worker.stats.claimed} attempts, {worker.stats.events_applied} events; "
            + ", ".join(f"campaign {cid}: {status}" for cid, status in states.items()),
            markup=False,
        )


def _stop_on_signals(stop: Callable[[], None]) -> None:
    import signal

    def handler(signum: int, _frame: Any) -> None:
        err.print(f"{signal.Signals(signum).name}: finishing the current round, then stopping", markup=False)
        stop()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


@app.command()
def worker(
    campaign: Annotated[
        list[int] | None, typer.Option("--campaign", "-c", help="Only these campaigns (default: all).")
    ] = None,
    poll: Annotated[float, typer.Option("--poll", min=0.05, max=60, help="Seconds between rounds when idle.")] = 1.0,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the worker's figures as JSON when it stops.")
    ] = False,
) -> None:
    """Run the live engine: claim due contacts, call providers, apply webhook events, run cycles.

    Start as many as you like, on one machine or several, on the same database: a contact is never in two attempts,
    limits hold across all of them, and the claims of a worker that dies are taken back by the others within 30 s.
    Runs until SIGTERM or Ctrl-C (it then finishes its round and exits 0); it never exits because it is idle.
    """
    from herald.engine.worker import Worker, describe
    from herald.engine.worker import log as worker_log
    from herald.logs import for_process

    _freeze_gc()
    with _store() as store:
        for_process(store)
        live = Worker(store, poll_seconds=poll, campaign_ids=campaign)
        _stop_on_signals(live.stop)
        live.register()
        worker_log.info("worker %s started (pid %s); Ctrl-C or SIGTERM stops it", live.worker_id, os.getpid())
        stats = live.run()
    if json_output:
        _print_json(describe(stats))
    else:
        worker_log.info("worker stopped: %s attempts claimed, %s events applied", stats.claimed, stats.events_applied)


@app.command()
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=0, max=65535, help="Port to listen on.")] = 8000,
    processes: Annotated[int, typer.Option("--processes", min=1, max=64, help="HTTP processes.")] = 1,
) -> None:
    """Serve HTTP: the REST API under /api/v1.0 (keys from `herald keys create`), provider webhooks in
    (POST /webhooks/{provider}) and /healthz.

    Webhooks are verified, parsed and stored in the inbox; `herald worker`s apply them. Callback URLs given to
    providers start with HERALD_PUBLIC_URL (default http://127.0.0.1:8000). Requests per API key are limited by
    HERALD_RATE_LIMIT (default 12 a second; `off` to turn off) across every serve process.
    """
    import signal

    import uvicorn

    from herald.api.ratelimit import from_environment
    from herald.api.server import NoDelayH11Protocol
    from herald.database import selected_url
    from herald.logs import for_process

    # Checked here, with a clear message, rather than in each HTTP process.
    with _store() as store:
        log_config = for_process(store)
    try:
        from_environment()
    except ValueError as error:
        raise _fail(str(error)) from None
    os.environ["HERALD_DATABASE_URL"] = selected_url()
    # Uvicorn shuts down gracefully on SIGTERM/SIGINT and then raises the signal again under the handler that was
    # there before it: a stop that was asked for is a clean exit, as for `herald worker`.
    for stop_signal in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop_signal, lambda *_: sys.exit(0))
    uvicorn.run(
        "herald.api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=processes,
        http=NoDelayH11Protocol,
        log_level="info",
        log_config=log_config,
        access_log=False,
    )


@app.command()
def events(
    pending: Annotated[bool, typer.Option("--pending", help="Events received but not applied yet.")] = True,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many to list.")] = 50,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Provider events waiting in the inbox: how many, and the oldest with why each waits."""
    from dataclasses import asdict

    from herald.store import inbox

    with _store() as store, store.read() as tx:
        count, rows = inbox.pending(tx, limit)
    if json_output:
        _print_json({"pending": count, "events": [asdict(row) for row in rows]})
        return
    err.print(f"{count} event(s) waiting", markup=False)
    if rows:
        table = Table("id", "provider", "kind", "external id", "attempt", "received", "tries", "why")
        for row in rows:
            table.add_row(
                str(row.id), row.provider, row.kind, row.external_id, row.attempt_id,
                f"{row.received_at:%Y-%m-%d %H:%M:%S}", str(row.tries), row.reason,
            )  # fmt: skip
        plain_console().print(table)


# --- export --------------------------------------------------------------------------------------------------------


class ExportFormat(StrEnum):
    """File format of an export."""

    csv = "csv"
    parquet = "parquet"


class CallLayout(StrEnum):
    """Call export column layout."""

    classic = "classic"
    july_2026 = "2026-07"


@app.command("export")
def export_command(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    kind: Annotated[ExportKind, typer.Argument(help="Which export.")],
    output: Annotated[str, typer.Option("--output", "-o", help="File to write; - for standard output.")] = "-",
    fmt: Annotated[ExportFormat, typer.Option("--format", help="csv or parquet.")] = ExportFormat.csv,
    raw: Annotated[
        bool, typer.Option("--raw", help="Turn off the spreadsheet formula guard (cells starting = + - @).")
    ] = False,
    layout: Annotated[
        CallLayout,
        typer.Option("--layout", help="Call export layout: classic, or 2026-07 (adds ended_by, ended_reason)."),
    ] = CallLayout.classic,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the -o file if it exists.")] = False,
) -> None:
    """Write an export: contacts, calls, results, recordings (Altur formats) or sendout (Connectly format)."""
    from herald.exports.formats import ExportNotAvailable, export

    if output == "-":
        if fmt is ExportFormat.parquet:
            raise _fail("--format parquet writes a binary file: give one with -o FILE")
    else:
        _check_output(Path(output), force=force)

    with _store() as store, _progress() as progress:
        task = progress.add_task(f"exporting {kind.value}", total=None, info="rows")
        try:
            count = export(
                store,
                campaign_id,
                kind,
                output,
                fmt=fmt.value,
                guard=not raw,
                layout=layout.value,
                on_rows=lambda done: progress.update(task, completed=done),
            )
        except ExportNotAvailable as error:
            raise _fail(str(error)) from None
        except OSError as error:  # permission denied, disk full: the checks above cannot foresee these
            raise _fail(f"cannot write {output}: {error.strerror or error}") from None
    if output != "-":
        err.print(f"{count} rows written to {output}")


# --- demo ----------------------------------------------------------------------------------------------------------


@app.command()
def demo(
    channel: Annotated[Channel, typer.Option("--channel", help="phone_call or whatsapp.")] = Channel.PHONE_CALL,
    contacts: Annotated[int, typer.Option("--contacts", min=1, help="How many synthetic contacts.")] = 200,
    seed: Annotated[int, typer.Option("--seed", help="Same seed, byte-identical exports.")] = 7,
    out: Annotated[Path, typer.Option("--out", help="Folder for the database, exports and report.")] = Path("demo-out"),
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object describing the run.")] = False,
) -> None:
    """Run a whole simulated campaign on a fresh SQLite database and write its exports and an HTML report."""
    from herald.demo import run_demo

    if out.exists() and not out.is_dir():
        raise _fail(f"--out {out} is a file; give a folder (it is created if missing)")
    _freeze_gc()
    with _engine_progress(f"demo ({channel.value})") as show:
        try:
            result = run_demo(out, channel, contacts, seed, progress=show)
        except OSError as error:  # a folder that cannot be created or written: one line, not a traceback
            raise _fail(f"--out {out}: {error.strerror or error}") from None
    if json_output:
        _print_json(result.as_json())
        return
    console = plain_console()
    counts = result.counts
    console.print(
        styled(
            (result.config.name, "bold"),
            f" ({result.config.channel}): {counts['campaign_status']} after {counts['cycles']} cycle(s), "
            f"{counts['attempts']} attempts over {counts['simulated_days']} simulated days",
        )
    )
    table = Table("status", "contacts")
    for status, count in counts["status_counts"].items():
        table.add_row(status, str(count))
    console.print(table)
    for name, path in result.outputs.items():
        console.print(f"  {name:<11} {path}")


def main() -> None:
    """Entry point of the `herald` console script."""
    app()
