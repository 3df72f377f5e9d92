"""`herald webhooks`: where each business's outgoing webhooks go (SPEC §10), and what became of each delivery."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from herald.cli_support import err, fail, now, open_store, print_json, print_table

webhooks_app = typer.Typer(
    help="Outgoing webhooks (Altur's on_call_end, campaign.status_changed, campaign.cycle_completed), signed with "
    "X-Altur-Signature and delivered by `herald worker`.",
    no_args_is_help=True,
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ALL_EVENTS = "on_call_end,campaign.status_changed,campaign.cycle_completed"


def register(app: typer.Typer) -> None:
    """Add `herald webhooks` to the `herald` application."""
    app.add_typer(webhooks_app, name="webhooks")


def _names(values: list[str]) -> list[str]:
    return [name.strip() for value in values for name in value.split(",") if name.strip()]


def _endpoint_row(endpoint: Any, business: str) -> dict[str, Any]:
    return {
        "id": endpoint.public_id,
        "business": business,
        "url": endpoint.url,
        "events": list(endpoint.events),
        "filters": endpoint.filters,
        "created_at": endpoint.created_at.isoformat(),
    }


@webhooks_app.command("add")
def webhooks_add(
    url: Annotated[str, typer.Argument(help="Where to POST (http:// or https://).")],
    secret: Annotated[
        str, typer.Option("--secret", help="The shared secret, base64-encoded (e.g. `openssl rand -base64 32`).")
    ],
    events: Annotated[
        list[str], typer.Option("--events", help=f"Comma-separated event types (default all: {ALL_EVENTS}).")
    ] = [ALL_EVENTS],  # noqa: B006 - Typer reads the default from here
    status: Annotated[
        list[str] | None,
        typer.Option("--status", help="Only campaign.status_changed to these new statuses (repeat or commas)."),
    ] = None,
    business: Annotated[str, typer.Option("--business", help="The business's name.")] = "default",
    json_output: JsonOption = False,
) -> None:
    """Send a business's webhooks to URL, signed with the secret."""
    from herald.engine.campaigns import DEFAULT_BUSINESS, default_business_id
    from herald.outbox.store import EndpointError, add_endpoint, check_endpoint
    from herald.store.tenancy import business_named

    event_names, statuses = _names(events), _names(status or [])
    try:
        check_endpoint(url, secret, event_names, statuses)
    except EndpointError as error:
        raise fail(str(error)) from None
    with open_store() as store, store.tx() as tx:
        if business == DEFAULT_BUSINESS:
            business_id = default_business_id(tx, now())
        else:
            found = business_named(tx, business)
            if found is None:
                raise fail(f"no business called {business!r} (see `herald business list`)")
            business_id = found.id
        endpoint = add_endpoint(tx, business_id, url, secret, event_names, statuses, now())
    if json_output:
        print_json(_endpoint_row(endpoint, business))
    else:
        err.print(f"webhook {endpoint.public_id} added: {', '.join(endpoint.events)} → {url}", markup=False)


@webhooks_app.command("list")
def webhooks_list(json_output: JsonOption = False) -> None:
    """Every webhook endpoint (never its secret)."""
    from herald.outbox.store import list_endpoints
    from herald.store.tenancy import businesses

    with open_store() as store, store.read() as tx:
        names = {b.id: b.name for b in businesses(tx)}
        rows = [_endpoint_row(endpoint, names[endpoint.business_id]) for endpoint in list_endpoints(tx)]
    if json_output:
        print_json(rows)
        return
    for row in rows:
        row["events"] = ", ".join(row["events"])
        row["filters"] = ", ".join(row["filters"].get("status", []))
    print_table(rows, ("id", "business", "url", "events", "filters", "created_at"), kind="webhooks")


@webhooks_app.command("remove")
def webhooks_remove(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint's id, as `herald webhooks list` shows.")],
) -> None:
    """Stop sending to an endpoint; what it was not sent yet is cancelled (its history is kept)."""
    from herald.outbox.store import remove_endpoint

    with open_store() as store, store.tx() as tx:
        cancelled = remove_endpoint(tx, endpoint_id, now())
    if cancelled is None:
        raise fail(f"no webhook {endpoint_id!r} (see `herald webhooks list`)")
    err.print(f"webhook {endpoint_id} removed; {cancelled} pending deliveries cancelled", markup=False)


@webhooks_app.command("deliveries")
def webhooks_deliveries(
    status: Annotated[
        Literal["pending", "delivered", "failed", "cancelled"] | None,
        typer.Option("--status", help="Only deliveries in this status."),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=0, help="How many, newest first (0: all).")] = 50,
    json_output: JsonOption = False,
) -> None:
    """Deliveries, newest first, each with its attempts (when, status code, error, how long)."""
    from dataclasses import asdict

    from herald.outbox.store import deliveries

    with open_store() as store, store.read() as tx:
        total, rows = deliveries(tx, status, limit or None)
    if json_output:
        print_json([asdict(row) for row in rows])
        return
    table = []
    for row in rows:
        last = row.tries[-1] if row.tries else None
        table.append(
            {
                "id": row.id,
                "event": row.event_type,
                "endpoint": row.endpoint,
                "status": row.status,
                "attempts": row.attempts,
                "next_attempt_at": row.next_attempt_at.isoformat() if row.next_attempt_at else "",
                "last": "" if last is None else (last["status_code"] or last["error"][:40]),
            }
        )
    columns = ("id", "event", "endpoint", "status", "attempts", "next_attempt_at", "last")
    print_table(table, columns, left_out=total - len(rows), kind="deliveries")
