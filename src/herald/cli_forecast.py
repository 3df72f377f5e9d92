"""`herald forecast`: a campaign run to its end by the simulator on a copy, to see what to expect (issue 15)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer

from herald.cli_support import fail, now, open_store, print_json

DEFAULT_RUNS = 3


def register(app: typer.Typer) -> None:
    """Add `herald forecast` to the `herald` application."""
    app.command("forecast")(forecast)


def _start(value: str) -> datetime:
    try:
        start = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"--from {value!r} is not an ISO date and time (e.g. 2026-01-05T09:00-06:00)") from None
    if start.tzinfo is None:
        raise fail(f"--from {value!r} needs a UTC offset (e.g. 2026-01-05T09:00-06:00 or …Z)")
    return start


def _number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"


def _spread(value: dict[str, Any] | None, unit: str = "") -> str:
    """`mean`, and `(min …, max …)` when the runs differ; `—` for a figure no run has (days of unfinished runs)."""
    if value is None:
        return "—"
    text = _number(value["mean"]) + unit
    if value["min"] != value["max"]:
        text += f" (min {_number(value['min'])}, max {_number(value['max'])})"
    return text


def forecast(
    campaign_id: Annotated[int, typer.Argument(help="Campaign id.")],
    runs: Annotated[
        int, typer.Option("--runs", min=1, max=10, help="Simulated runs (seeds S, S+1, …): mean, min and max.")
    ] = DEFAULT_RUNS,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the first run (same seed, same forecast).")] = 0,
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Forecast as if the campaign stood as it does now at this ISO time (with offset): calling hours and days of the week then apply.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the forecast as JSON.")] = False,
) -> None:
    """Forecast a campaign: its configuration and contacts as they stand (a running campaign forecasts what
    remains) run to the end by the simulator on a virtual clock, on a temporary copy; the campaign and its
    database are not changed. Reports reach, conversions, calls and billed minutes by answered_by (WhatsApp:
    messages, delivered, read, replies) and days to finish. Above 2,000 contacts (WhatsApp: 250) a seeded sample
    is simulated, with the concurrency and daily message limits scaled alike, and the counts scaled back up."""
    from herald.engine.forecast import forecast_campaign

    present = now()
    began = _start(start) if start is not None else present
    with open_store() as store:
        result = forecast_campaign(store, campaign_id, began, runs=runs, seed=seed, now=present).as_json()
    if json_output:
        print_json(result)
        return
    lines = [
        f"campaign {campaign_id} ({result['channel']}, {result['status']}): {result['contacts']:,} contacts, "
        f"{result['remaining']:,} still to contact; {result['runs']} run(s) from {began:%Y-%m-%d %H:%M %Z}",
        f"  reach        {_spread(result['reach'])}   (now {result['current']['reach']:,})",
        f"  conversions  {_spread(result['conversions'])}   (now {result['current']['conversions']:,})",
    ]
    if result["phone"] is not None:
        phone = result["phone"]
        lines.append(f"  calls        {_spread(phone['calls'])}")
        for who, minutes in phone["billed_minutes"].items():
            lines.append(f"  billed min   {who:<8} {_spread(minutes)}")
    else:
        for key in ("messages", "delivered", "read", "replies"):
            lines.append(f"  {key:<12} {_spread(result['whatsapp'][key])}")
    days = result["days_to_finish"]
    finished = f"{result['finished_runs']}/{result['runs']} runs finished within a year"
    lines.append(f"  days         {_spread(days)}   ({finished})")
    if result["sampled"]:
        lines.append(f"  (simulated a sample of {result['simulated_contacts']:,} contacts; counts scaled up)")
    if result["outcome_mix"] != "campaign":
        lines.append("  (the campaign's provider is not the simulator: its default outcome mix was used)")
    typer.echo("\n".join(lines))
