"""Opening the database a user named, with one clear sentence for each way the name can be wrong.

`Store.open` trusts its URL: a mistyped SQLite path becomes a new empty database, a text file or another
application's SQLite file ends in a driver traceback, and an unreachable PostgreSQL server waits for the driver's
own timeout. The command line opens the store through `open_database`, which checks the URL first and raises
`DatabaseError` with a message that names the URL (password hidden) and what to do.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from herald.store.db import database_url

if TYPE_CHECKING:
    from herald.store.queries import Store

SQLITE_MAGIC = b"SQLite format 3\x00"
#: Tables that only a Herald database has; a SQLite file with tables but none of these belongs to another program.
HERALD_TABLES = frozenset({"alembic_version", "campaigns", "contacts"})
#: Seconds to wait for a PostgreSQL server before saying it cannot be reached.
CONNECT_TIMEOUT = 5


class DatabaseError(Exception):
    """The database URL cannot be used; the message is one line for the user."""


_selected: dict[str, str | None] = {"url": None}


def select(url: str | None) -> None:
    """Remember the `--db` URL of this command line, so every part of the command opens the same database."""
    _selected["url"] = url


def selected_url() -> str:
    """The URL a command uses: `--db`, else HERALD_DATABASE_URL, else sqlite:///herald.db."""
    return database_url(_selected["url"])


def open_database(url: str | None = None, *, create: bool = False) -> Store:
    """Check the URL (default: `selected_url()`), then open and migrate the store.

    Only with `create` may a missing SQLite file be created (`herald init`); otherwise a path that does not exist is
    an error, so a typo never leaves an empty database behind. Raises DatabaseError.
    """
    from herald.store.queries import Store

    text = url or selected_url()
    parsed = parse_url(text)
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        check_sqlite(parsed, create=create)
    elif backend == "postgresql":
        check_reachable(parsed, shown)
    try:
        return Store.open(text)
    except NoSuchModuleError as error:
        raise DatabaseError(f"{shown}: no driver for this kind of database ({error})") from None
    except ModuleNotFoundError as error:
        raise DatabaseError(f"{shown}: the database driver {error.name!r} is not installed") from None
    except (SQLAlchemyError, sqlite3.Error) as error:
        raise DatabaseError(f"{shown}: cannot use this database ({_first_line(error)})") from None
    except Exception as error:  # an Alembic revision of another program, a migration error: never a traceback
        raise DatabaseError(
            f"{shown}: not a Herald database, or one of a newer Herald ({_first_line(error)})"
        ) from None


def parse_url(text: str) -> URL:
    """The SQLAlchemy URL of `text`; a bare path gets a hint with the sqlite:/// form."""
    try:
        return make_url(text)
    except ArgumentError:
        hint = f"; for a SQLite file write sqlite:///{text}" if "://" not in text else ""
        raise DatabaseError(
            f"{text!r} is not a database URL (expected sqlite:///FILE or postgresql+psycopg://USER@HOST/DB){hint}"
        ) from None


def check_sqlite(url: URL, *, create: bool) -> None:
    """A SQLite path must be a Herald database; a missing one may only be created by `init`."""
    name = url.database or ""
    if name in ("", ":memory:") or name.startswith("file:"):
        return  # in-memory or URI databases are for programs and tests, which know what they open
    path = Path(name)
    if path.is_dir():
        raise DatabaseError(f"{path} is a folder, not a database file")
    if not path.exists():
        if not create:
            raise DatabaseError(f"no database at {path}; run `herald init`")
        if not path.parent.is_dir():
            raise DatabaseError(f"cannot create {path}: the folder {path.parent} does not exist")
        return
    try:
        with path.open("rb") as handle:
            head = handle.read(len(SQLITE_MAGIC))
    except OSError as error:
        raise DatabaseError(f"cannot read {path}: {error.strerror or error}") from None
    if not head:
        if not create:
            raise DatabaseError(f"{path} is empty, not a Herald database; run `herald init`")
        return
    if head != SQLITE_MAGIC:
        raise DatabaseError(f"{path} is not a SQLite database file")
    tables = _sqlite_tables(path)
    if not tables:
        if not create:
            raise DatabaseError(f"{path} has no Herald tables; run `herald init`")
        return
    if not tables & HERALD_TABLES:
        listed = ", ".join(sorted(tables)[:5]) + (", …" if len(tables) > 5 else "")
        raise DatabaseError(f"{path} is the SQLite database of another application (tables: {listed})")


def _sqlite_tables(path: Path) -> set[str]:
    # Read-only: checking a file must never change it, whatever it turns out to be.
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        raise DatabaseError(f"{path} is not a usable SQLite database ({_first_line(error)})") from None
    return {str(row[0]) for row in rows}


def check_reachable(url: URL, shown: str) -> None:
    """Connect once with a short timeout, so an unreachable server is reported in seconds, not minutes."""
    query = dict(url.query)
    query.setdefault("connect_timeout", str(CONNECT_TIMEOUT))
    try:
        engine = create_engine(url.set(query=query))
    except (NoSuchModuleError, ModuleNotFoundError) as error:
        raise DatabaseError(f"{shown}: the PostgreSQL driver is not installed ({_first_line(error)})") from None
    try:
        with engine.connect():
            pass
    except SQLAlchemyError as error:
        raise DatabaseError(f"cannot reach the database at {shown}: {_first_line(error.__cause__ or error)}") from None
    finally:
        engine.dispose()


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__
