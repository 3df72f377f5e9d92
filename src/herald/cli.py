"""Herald's command line: each command is a few lines over the library layers."""

from __future__ import annotations

import typer

from herald.analytics.cli import analyze_command

app = typer.Typer(
    name="herald",
    help="Herald: outbound campaign engine for AI phone calls and WhatsApp.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Herald: outbound campaign engine for AI phone calls and WhatsApp."""


app.command("analyze")(analyze_command)


def main() -> None:
    """Entry point of the `herald` console script."""
    app()
