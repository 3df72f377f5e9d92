"""What every command module shares: the error console, failing with one line, the checked store, JSON and tables.

The command modules (`herald.cli`, `herald.cli_tenancy`, …) import these, so no command module imports another.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from herald.console import plain_console, styled

if TYPE_CHECKING:
    from herald.store.queries import Store

# User text (names, cells, paths) reaches these consoles, so they never read markup; see herald.console.
err = plain_console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    """Print `error: message` on stderr; raise what this returns to end the command with `code`."""
    err.print(styled(("error:", "red"), " ", message))
    return typer.Exit(code)


@contextmanager
def open_store(*, create: bool = False) -> Iterator[Store]:
    """The checked database of this command line (`--db`); only `init` may create a missing SQLite file."""
    from herald.database import DatabaseError, open_database
    from herald.store.queries import NotFound

    try:
        store = open_database(create=create)
    except DatabaseError as error:
        raise fail(str(error)) from None
    try:
        yield store
    except NotFound as error:
        raise fail(str(error)) from None
    finally:
        store.close()


def print_json(value: Any) -> None:
    """Write `value` as indented JSON on stdout (dates as ISO text)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")


def now() -> datetime:
    """The current UTC time."""
    from herald.engine.clock import RealClock

    return RealClock().now()


def print_table(rows: list[dict[str, Any]], columns: tuple[str, ...], left_out: int = 0, kind: str = "rows") -> None:
    """Rows as a table on stdout, and how many were left out on stderr."""
    table = Table(*columns)
    for row in rows:
        table.add_row(*("" if row[c] is None else str(row[c]) for c in columns))
    plain_console().print(table)
    if left_out:
        err.print(f"… and {left_out} more {kind} (--limit 0 shows all, --json prints all)")
