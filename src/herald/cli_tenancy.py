"""`herald business`, `herald keys`, `herald agents`, `herald integrations`: who may use the REST API, and with what."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from herald.cli_support import err, fail, now, open_store, print_json, print_table

business_app = typer.Typer(
    help="Businesses: each owns its campaigns, API keys, agents and webhooks.", no_args_is_help=True
)
keys_app = typer.Typer(help="API keys of a business (`Authorization: api-key KEY`).", no_args_is_help=True)
agents_app = typer.Typer(help="Agents of a business, which API-created campaigns use.", no_args_is_help=True)
integrations_app = typer.Typer(help="Integrations: an agent's channel through a provider.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
BusinessOption = Annotated[str, typer.Option("--business", help="The business's name.")]


def register(app: typer.Typer) -> None:
    """Add these command groups to the `herald` application."""
    app.add_typer(business_app, name="business")
    app.add_typer(keys_app, name="keys")
    app.add_typer(agents_app, name="agents")
    app.add_typer(integrations_app, name="integrations")


def _business_id(tx: Any, name: str) -> int:
    from herald.store.tenancy import business_named

    found = business_named(tx, name)
    if found is None:
        raise fail(f"no business called {name!r} (see `herald business list`)")
    return found.id


# --- business ------------------------------------------------------------------------------------------------------


@business_app.command("create")
def business_create(
    name: Annotated[str, typer.Argument(help="A name of your choice.")], json_output: JsonOption = False
) -> None:
    """Create a business, with one ready agent (simulator phone and WhatsApp integrations)."""
    from herald.ids import IdFactory
    from herald.store.tenancy import BusinessExists, agents, create_business

    with open_store() as store, store.tx() as tx:
        try:
            business = create_business(tx, name, now(), IdFactory())
        except (BusinessExists, ValueError) as error:
            raise fail(str(error)) from None
        agent = agents(tx, business.id)[0]
    if json_output:
        print_json({"business": business.name, "business_id": business.public_id, "agent_id": agent.public_id})
    else:
        err.print(f"business {business.name!r} created ({business.public_id}); its agent is {agent.public_id}")


@business_app.command("list")
def business_list(json_output: JsonOption = False) -> None:
    """Every business."""
    from herald.store.tenancy import businesses

    with open_store() as store, store.read() as tx:
        rows = [
            {"name": b.name, "business_id": b.public_id, "created_at": b.created_at.isoformat()} for b in businesses(tx)
        ]
    if json_output:
        print_json(rows)
    else:
        print_table(rows, ("name", "business_id", "created_at"))


# --- keys ----------------------------------------------------------------------------------------------------------


def _key_row(key: Any) -> dict[str, Any]:
    return {
        "id": key.id,
        "business": key.business,
        "prefix": key.prefix,
        "label": key.label,
        "created_at": key.created_at.isoformat(),
        "revoked_at": None if key.revoked_at is None else key.revoked_at.isoformat(),
    }


@keys_app.command("create")
def keys_create(
    business: BusinessOption,
    label: Annotated[str, typer.Option("--label", help="A note to tell keys apart.")] = "",
    json_output: Annotated[
        bool, typer.Option("--json", help='Print {"business", "business_id", "key"} as JSON.')
    ] = False,
) -> None:
    """Create an API key (and the business, if it does not exist). The key is printed once and never again."""
    from herald.ids import IdFactory
    from herald.store.tenancy import create_key, ensure_business

    with open_store() as store, store.tx() as tx:
        try:
            found, created = ensure_business(tx, business, now(), IdFactory())
        except ValueError as error:
            raise fail(str(error)) from None
        listed, key = create_key(tx, found.id, now(), label)
    if json_output:
        print_json({"business": found.name, "business_id": found.public_id, "key": key})
        return
    if created:
        err.print(f"business {found.name!r} created ({found.public_id})")
    err.print(f"key {listed.id} for {found.name!r}; it is shown once, store it now:")
    typer.echo(key)


@keys_app.command("list")
def keys_list(
    business: Annotated[str | None, typer.Option("--business", help="Only this business's keys.")] = None,
    json_output: JsonOption = False,
) -> None:
    """API keys: id, business, first characters, label, when created and revoked (never the key itself)."""
    from herald.store.tenancy import api_keys

    with open_store() as store, store.read() as tx:
        business_id = None if business is None else _business_id(tx, business)
        rows = [_key_row(key) for key in api_keys(tx, business_id)]
    if json_output:
        print_json(rows)
    else:
        print_table(rows, ("id", "business", "prefix", "label", "created_at", "revoked_at"), kind="keys")


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[str, typer.Argument(help="The key's id or its first characters, as `herald keys list` shows.")],
    json_output: JsonOption = False,
) -> None:
    """Revoke a key: requests with it get 401 from now on."""
    from herald.store.tenancy import revoke_key

    with open_store() as store, store.tx() as tx:
        try:
            revoked = revoke_key(tx, key, now())
        except ValueError as error:
            raise fail(str(error)) from None
    if not revoked:
        raise fail(f"no live key {key!r} (see `herald keys list`)")
    if json_output:
        print_json(_key_row(revoked[0]))
    else:
        err.print(f"key {revoked[0].id} ({revoked[0].prefix}…) of {revoked[0].business!r} revoked")


# --- agents and integrations ---------------------------------------------------------------------------------------


def _agent_row(agent: Any) -> dict[str, Any]:
    return {
        "public_id": agent.public_id,
        "name": agent.name,
        "integrations": [
            {"public_id": i.public_id, "integration_type": i.integration_type, "provider": i.provider}
            for i in agent.integrations
        ],
    }


@agents_app.command("create")
def agents_create(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="YAML or JSON agent: name, tags, fields, conversion, …")
    ],
    business: BusinessOption,
    json_output: JsonOption = False,
) -> None:
    """Create an agent from a file (the `agent:` block of a campaign file)."""
    from herald.campaign_file import CampaignFileError, read_agent_file
    from herald.ids import IdFactory
    from herald.store.tenancy import create_agent

    try:
        config = read_agent_file(file)
    except CampaignFileError as error:
        raise fail(f"{file}: {error}") from None
    with open_store() as store, store.tx() as tx:
        agent = create_agent(tx, _business_id(tx, business), config, now(), IdFactory())
    if json_output:
        print_json(_agent_row(agent))
    else:
        err.print(f"agent {agent.name!r} created: {agent.public_id}")


@agents_app.command("list")
def agents_list(
    business: Annotated[str, typer.Option("--business", help="The business's name.")] = "default",
    json_output: JsonOption = False,
) -> None:
    """A business's agents and their integrations."""
    from herald.store.tenancy import agents

    with open_store() as store, store.read() as tx:
        rows = [_agent_row(agent) for agent in agents(tx, _business_id(tx, business))]
    if json_output:
        print_json({"agents": rows})
        return
    flat = [
        {
            "agent": row["public_id"],
            "name": row["name"],
            "integrations": ", ".join(f"{i['public_id']} ({i['provider']})" for i in row["integrations"]),
        }
        for row in rows
    ]
    print_table(flat, ("agent", "name", "integrations"), kind="agents")


@integrations_app.command("create")
def integrations_create(
    agent: Annotated[str, typer.Option("--agent", help="The agent's id (a UUID, see `herald agents list`).")],
    provider: Annotated[str, typer.Option("--provider", help="simulator, http, twilio, vapi or whatsapp_cloud.")],
    channel: Annotated[
        Literal["phone_call", "whatsapp"], typer.Option("--channel", help="The channel of the integration.")
    ] = "phone_call",
    options: Annotated[
        Path | None,
        typer.Option(
            "--options", exists=True, dir_okay=False, help="YAML or JSON provider options (secrets as env:NAME)."
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Give an agent a channel through a provider; campaigns name it by the printed `iph_…`/`iwa_…` id."""
    from herald.campaign_file import CampaignFileError, read_options_file
    from herald.ids import IdFactory
    from herald.providers.registry import (
        ProviderOptionsError,
        UnknownProvider,
        UnsupportedChannel,
        check_channel,
        validate_options,
    )
    from herald.store.tenancy import agent_by_public_id, agent_owner, create_integration

    try:
        values = {} if options is None else read_options_file(options)
        check_channel(provider, channel)
        validate_options(provider, values)
    except CampaignFileError as error:
        raise fail(f"{options}: {error}") from None
    except (UnknownProvider, UnsupportedChannel, ProviderOptionsError) as error:
        raise fail(str(error)) from None
    with open_store() as store, store.tx() as tx:
        business_id = agent_owner(tx, agent)
        found = None if business_id is None else agent_by_public_id(tx, business_id, agent)
        if found is None:
            raise fail(f"no agent {agent!r} (see `herald agents list --business NAME`)")
        integration = create_integration(tx, found.id, channel, provider, values, now(), IdFactory())
    row = {"public_id": integration.public_id, "integration_type": channel, "provider": provider, "agent_id": agent}
    if json_output:
        print_json(row)
    else:
        err.print(f"integration {integration.public_id} ({channel} through {provider}) added to agent {agent}")
