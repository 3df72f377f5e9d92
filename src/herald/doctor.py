"""`herald doctor`: is this installation ready to run campaigns? One result per check, each with what to do.

The checks only read: the database is opened without migrating it (a doctor that fixed the schema would hide the
problem from the processes that did not), and nothing is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from functools import cache
from typing import Any, Literal
from urllib.parse import urlsplit

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, select, text

from herald.providers.base import DEFAULT_PUBLIC_URL
from herald.store import schema as t
from herald.store.queries import Tx

Status = Literal["ok", "warn", "fail", "skip"]

#: Seconds `herald doctor` waits for `{HERALD_PUBLIC_URL}/healthz`.
PUBLIC_URL_TIMEOUT = 3.0
#: Campaign statuses whose provider credentials must resolve now (paused and finished campaigns place no attempt).
LIVE_STATUSES = ("ready", "active", "cooldown")


@dataclass(frozen=True, slots=True)
class Check:
    """The result of one check: `fail` makes `herald doctor` exit 1, `warn` does not; `skip`: could not be checked
    because an earlier check failed."""

    name: str
    status: Status
    detail: str

    def as_dict(self) -> dict[str, str]:
        """For `--json`."""
        return asdict(self)


# --- migrations ------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SchemaState:
    """The database's Alembic revisions and the newest ones this Herald has."""

    current: frozenset[str]
    heads: frozenset[str]

    @property
    def at_head(self) -> bool:
        """The schema is the newest."""
        return self.current == self.heads

    def problem(self) -> str | None:
        """What is wrong, with what to do; None at head."""
        if self.at_head:
            return None
        if not self.current:
            return "the database has no Herald schema; run `herald init`"
        unknown = self.current - _known_revisions()
        if unknown:
            return (
                f"the database is at revision {', '.join(sorted(unknown))}, which this Herald does not know "
                "(a newer Herald migrated it): upgrade Herald"
            )
        return (
            f"the schema is at revision {', '.join(sorted(self.current))}, the newest is "
            f"{', '.join(sorted(self.heads))}: run `herald init` to migrate"
        )


@cache
def _script() -> ScriptDirectory:
    # The migration scripts ship with the package and do not change while a process runs: read them once.
    from herald.store.migrate import _SCRIPTS

    return ScriptDirectory(str(_SCRIPTS))


@cache
def _known_revisions() -> frozenset[str]:
    return frozenset(revision.revision for revision in _script().walk_revisions())


def schema_state(connection: Connection) -> SchemaState:
    """Where the schema of `connection`'s database stands (reads `alembic_version` only)."""
    current = frozenset(MigrationContext.configure(connection).get_current_heads())
    return SchemaState(current, frozenset(_script().get_heads()))


# --- credentials -------------------------------------------------------------------------------------------------


def _env_names(value: Any) -> Iterator[str]:
    if isinstance(value, str) and value.startswith("env:") and len(value) > 4:
        yield value[4:]
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _env_names(item)
    elif isinstance(value, list):
        for item in value:
            yield from _env_names(item)


def env_references(tx: Tx, statuses: tuple[str, ...] | None = LIVE_STATUSES) -> dict[str, list[str]]:
    """Every environment variable named by an `env:NAME` credential, with what names it ("campaign 3", "integration
    iph_…"): the provider options of campaigns in `statuses` (None: all campaigns) and of every integration."""
    found: dict[str, list[str]] = {}
    campaigns = select(t.campaigns.c.id, t.campaigns.c.config)
    if statuses is not None:
        campaigns = campaigns.where(t.campaigns.c.status.in_(statuses))
    for campaign_id, config in tx.connection.execute(campaigns.order_by(t.campaigns.c.id)):
        options = (config or {}).get("provider_options") or {}
        for name in _env_names(options):
            found.setdefault(name, []).append(f"campaign {campaign_id}")
    integrations = select(t.integrations.c.public_id, t.integrations.c.options).order_by(t.integrations.c.id)
    for public_id, options in tx.connection.execute(integrations):
        for name in _env_names(options or {}):
            found.setdefault(name, []).append(f"integration {public_id}")
    return found


# --- the checks ----------------------------------------------------------------------------------------------------


def check_public_url(value: str | None) -> Check:
    """HERALD_PUBLIC_URL set and an http(s) URL with a host."""
    if not value:
        return Check(
            "public URL",
            "warn",
            f"HERALD_PUBLIC_URL is not set: callbacks go to {DEFAULT_PUBLIC_URL}, which no provider outside this "
            "machine can reach; set it to the address providers reach `herald serve` at",
        )
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return Check("public URL", "fail", f"HERALD_PUBLIC_URL={value!r} is not an http(s) URL with a host")
    return Check("public URL", "ok", f"HERALD_PUBLIC_URL={value}")


def check_database_url(url: str, environ: Mapping[str, str]) -> Check:
    """The database URL (--db, else HERALD_DATABASE_URL) is chosen on purpose and parses."""
    from herald.database import DatabaseError, parse_url
    from herald.store.db import DEFAULT_URL

    if url == DEFAULT_URL and not environ.get("HERALD_DATABASE_URL"):
        return Check(
            "database URL",
            "warn",
            "HERALD_DATABASE_URL is not set: using sqlite:///herald.db in the current folder; set it so that every "
            "herald process opens the same database",
        )
    try:
        shown = parse_url(url).render_as_string(hide_password=True)
    except DatabaseError as error:
        return Check("database URL", "fail", str(error))
    return Check("database URL", "ok", shown)


def _read(engine: Engine) -> Connection:
    # A read-only connection: on SQLite it begins deferred, so the doctor never queues for the write lock.
    from herald.store.db import READ_ONLY

    return engine.connect().execution_options(**{READ_ONLY: True})


def _open(url: str) -> Engine:
    from herald.database import check_reachable, check_sqlite, parse_url
    from herald.store.db import connect

    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        check_sqlite(parsed, create=False)
    elif parsed.get_backend_name() == "postgresql":
        check_reachable(parsed, parsed.render_as_string(hide_password=True))
    return connect(url)


def check_credentials(tx: Tx, environ: Mapping[str, str]) -> Check:
    """Every `env:NAME` credential of a live campaign or an integration names a set variable."""
    references = env_references(tx)
    missing = {name: users for name, users in references.items() if name not in environ}
    if missing:
        listed = "; ".join(f"{name} (used by {', '.join(users)})" for name, users in sorted(missing.items()))
        return Check("provider credentials", "fail", f"environment variables not set: {listed}")
    if not references:
        return Check("provider credentials", "ok", "no env: credentials are used")
    return Check(
        "provider credentials", "ok", f"{len(references)} env: credentials set: {', '.join(sorted(references))}"
    )


def check_workers(tx: Tx, now: datetime) -> Check:
    """At least one worker beats its heartbeat; failing only when a campaign is active and none does."""
    from herald.engine.worker import STALE_AFTER
    from herald.store.claims import alive

    workers = alive(tx, now - STALE_AFTER)
    active = tx.connection.execute(
        select(t.campaigns.c.id).where(t.campaigns.c.status.in_(("active", "cooldown"))).limit(1)
    ).first()
    if workers:
        listed = ", ".join(f"{w.kind} {w.id} ({w.host} pid {w.pid})" for w in workers)
        return Check("workers", "ok", f"{len(workers)} alive: {listed}")
    seconds = int(STALE_AFTER.total_seconds())
    if active is not None:
        return Check(
            "workers", "fail", f"no worker has beaten in {seconds} s and campaigns are active: start `herald worker`"
        )
    return Check(
        "workers", "warn", f"no worker has beaten in {seconds} s (no campaign is active); start `herald worker`"
    )


def check_reachable_url(public_url: str, timeout: float = PUBLIC_URL_TIMEOUT) -> Check:
    """GET {public_url}/healthz answers 200."""
    import httpx

    target = public_url.rstrip("/") + "/healthz"
    try:
        response = httpx.get(target, timeout=timeout, follow_redirects=False)
    except httpx.TimeoutException:
        return Check("public URL reachable", "fail", f"{target}: no answer within {timeout:g} s")
    except httpx.HTTPError as error:
        return Check(
            "public URL reachable",
            "fail",
            f"{target}: cannot connect ({type(error).__name__}: {error}); is `herald serve` running there?",
        )
    if response.status_code != 200:
        return Check("public URL reachable", "fail", f"{target} answered {response.status_code}, not 200")
    return Check("public URL reachable", "ok", f"{target} answered 200")


def run(
    database_url: str,
    now: datetime,
    environ: Mapping[str, str] | None = None,
    *,
    timeout: float = PUBLIC_URL_TIMEOUT,
) -> list[Check]:
    """Every check, in order, on the database at `database_url`; the checks that need the database are skipped when
    it cannot be opened or its schema is not current."""
    env = dict(os.environ if environ is None else environ)
    public = env.get("HERALD_PUBLIC_URL")
    checks = [check_database_url(database_url, env), check_public_url(public)]
    checks.extend(_database_checks(database_url, env, now))
    checks.append(check_reachable_url(public or DEFAULT_PUBLIC_URL, timeout))
    return checks


def _database_checks(url: str, environ: Mapping[str, str], now: datetime) -> list[Check]:
    from herald.database import DatabaseError

    later = ("migrations", "provider credentials", "workers")
    try:
        engine = _open(url)
    except DatabaseError as error:
        return [Check("database", "fail", str(error)), *(Check(name, "skip", "needs the database") for name in later)]
    checks: list[Check] = []
    try:
        with _read(engine) as connection, connection.begin():
            connection.execute(text("SELECT 1"))
            checks.append(Check("database", "ok", f"{engine.dialect.name} answers"))
            state = schema_state(connection)
            problem = state.problem()
            if problem is not None:
                checks.append(Check("migrations", "fail", problem))
                return checks + [Check(name, "skip", "needs a current schema") for name in later[1:]]
            checks.append(Check("migrations", "ok", f"at revision {', '.join(sorted(state.current))}"))
            tx = Tx(connection)
            checks.append(check_credentials(tx, environ))
            checks.append(check_workers(tx, now))
    except Exception as error:  # a driver or SQL error is a result of the doctor, never a traceback
        done = {check.name for check in checks}
        name = next((name for name in ("database", *later) if name not in done), "database")
        checks.append(Check(name, "fail", f"{type(error).__name__}: {_first_line(error)}"))
    finally:
        engine.dispose()
    return checks


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def failed(checks: list[Check]) -> bool:
    """Any check failed."""
    return any(check.status == "fail" for check in checks)
