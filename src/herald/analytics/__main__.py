"""`python -m herald.analytics PATH...`: the analyze command alone, without loading the engine's CLI."""

from __future__ import annotations

import typer

from herald.analytics.cli import analyze_command


def main() -> None:
    """Run `analyze_command` as a one-command Typer app."""
    app = typer.Typer(add_completion=False)
    app.command()(analyze_command)
    app()


if __name__ == "__main__":
    main()
