"""`herald doctor`: checks an installation (configuration, database, schema, credentials, workers, public URL)."""

from __future__ import annotations

from typing import Annotated

import typer

from herald.cli_support import now, print_json
from herald.console import plain_console, styled

_MARKS = {"ok": ("ok", "green"), "warn": ("warn", "yellow"), "fail": ("FAIL", "red"), "skip": ("skip", "dim")}


def register(app: typer.Typer) -> None:
    """Add `herald doctor` to the `herald` application."""
    app.command("doctor")(doctor)


def doctor(
    json_output: Annotated[bool, typer.Option("--json", help="Print the checks as JSON.")] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, max=60, help="Seconds to wait for the public URL.")
    ] = 3.0,
) -> None:
    """Check that this installation can run campaigns: one line per check; exits 1 if any check fails.

    Checks the configuration (database URL, HERALD_PUBLIC_URL), that the database answers and its schema is current,
    that the `env:` credentials of live campaigns and of integrations are set here, that workers are alive, and that
    `{HERALD_PUBLIC_URL}/healthz` answers. It changes nothing (the schema is not migrated).
    """
    from herald import doctor as checks
    from herald.database import selected_url

    results = checks.run(selected_url(), now(), timeout=timeout)
    if json_output:
        print_json({"ok": not checks.failed(results), "checks": [check.as_dict() for check in results]})
    else:
        console = plain_console()
        for check in results:
            mark, colour = _MARKS[check.status]
            console.print(styled((f"{mark:<4}", colour), f" {check.name}: ", check.detail), soft_wrap=True)
    if checks.failed(results):
        raise typer.Exit(1)
