"""`herald users`: the people who may sign in to the web console of a business (`herald serve`, then `/`)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from herald.cli_support import err, fail, now, open_store, print_json, print_table

users_app = typer.Typer(help="Web console users: an e-mail and a password, for one business.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    """Add this command group to the `herald` application."""
    app.add_typer(users_app, name="users")


@users_app.command("create")
def users_create(
    business: Annotated[str, typer.Option("--business", help="The business's name (see `herald business list`).")],
    email: Annotated[str, typer.Option("--email", help="The e-mail the user signs in with.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input (its first line).")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Create a user who signs in to the web console for the business. The password is read from standard input, so
    that it never appears in the shell history or the process list."""
    from herald.store.tenancy import business_named
    from herald.store.users import UserExists, create_user

    if not password_stdin:
        raise fail('give the password on standard input with --password-stdin (e.g. `printf %s "$PW" | herald …`)')
    password = sys.stdin.readline().rstrip("\r\n")
    with open_store() as store, store.tx() as tx:
        found = business_named(tx, business)
        if found is None:
            raise fail(f"no business called {business!r} (see `herald business list`)")
        try:
            user = create_user(tx, found.id, email, password, now())
        except (UserExists, ValueError) as error:
            raise fail(str(error)) from None
    if json_output:
        print_json({"id": user.id, "business": user.business, "email": user.email})
    else:
        err.print(f"user {user.email} created for business {user.business!r}; sign in at /login of `herald serve`")


@users_app.command("list")
def users_list(
    business: Annotated[str | None, typer.Option("--business", help="Only this business's users.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Web console users (never their passwords)."""
    from herald.store.tenancy import business_named
    from herald.store.users import users

    with open_store() as store, store.read() as tx:
        business_id = None
        if business is not None:
            found = business_named(tx, business)
            if found is None:
                raise fail(f"no business called {business!r} (see `herald business list`)")
            business_id = found.id
        rows = [
            {"id": u.id, "business": u.business, "email": u.email, "created_at": u.created_at.isoformat()}
            for u in users(tx, business_id)
        ]
    if json_output:
        print_json(rows)
    else:
        print_table(rows, ("id", "business", "email", "created_at"))
