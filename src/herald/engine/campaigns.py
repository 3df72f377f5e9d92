"""Campaign operations a user asks for: create, load contacts, activate/pause/resume/archive.

Every status change goes through `change_status`, which also writes the campaign log (the webhook outbox).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from herald.domain import lifecycle
from herald.domain.campaign import AgentConfig, CampaignConfig
from herald.domain.statuses import CampaignStatus
from herald.ids import IdFactory
from herald.imports import ContactRow, ImportResult, PhoneNormalizer, read_contacts, region_for_timezone
from herald.outbox import hooks as outbox
from herald.store.campaign_dnc import barred_numbers, listed_numbers
from herald.store.queries import NewContact, Store, Tx
from herald.store.records import Campaign

DEFAULT_BUSINESS = "default"


class CampaignFinished(Exception):
    """A finished campaign is read-only (HTTP 409 later)."""


def change_status(tx: Tx, campaign: Campaign, target: CampaignStatus, now: datetime, **values: object) -> None:
    """Move a campaign to `target`, stamping started/ended times and logging the change."""
    if target is campaign.status and not values:
        return
    columns: dict[str, object] = dict(values)
    if target is not campaign.status:
        columns["status"] = target
        if target is CampaignStatus.ACTIVE and campaign.started_at is None:
            columns["started_at"] = now
        if target is CampaignStatus.FINISHED:
            columns["ended_at"] = now
        tx.log(
            campaign.id,
            "campaign.status_changed",
            {"previous_status": campaign.status.value, "new_status": target.value},
            now,
        )
        outbox.status_changed(tx, campaign, target, now)
    tx.update_campaign(campaign.id, campaign.status, campaign.cycle_iteration, **columns)


def default_business_id(tx: Tx, now: datetime, ids: IdFactory | None = None) -> int:
    """The business of campaign files and the command line, created with its ready agent on first use."""
    from herald.store.tenancy import ensure_business

    business, _created = ensure_business(tx, DEFAULT_BUSINESS, now, ids or IdFactory())
    return business.id


def create_campaign(store: Store, config: CampaignConfig, now: datetime, ids: IdFactory) -> int:
    """Store a new campaign for the default business; returns its id."""
    with store.tx() as tx:
        return tx.create_campaign(default_business_id(tx, now, ids), config, now)


def add_contacts(store: Store, campaign_id: int, contacts: Iterable[NewContact], now: datetime) -> tuple[int, int]:
    """Add (or update) contacts; the first contacts make a pending campaign ready. Returns (added, updated)."""
    with store.tx() as tx:
        campaign = _writable(tx, campaign_id)
        added, updated = tx.add_contacts(campaign_id, contacts, now)
        _after_added(tx, campaign, added, now)
    refresh_statistics(store, added)
    return added, updated


def _writable(tx: Tx, campaign_id: int) -> Campaign:
    campaign = tx.lock_campaign(campaign_id)
    if campaign.status is CampaignStatus.FINISHED:
        raise CampaignFinished(f"campaign {campaign_id} is finished and read-only")
    return campaign


def _after_added(tx: Tx, campaign: Campaign, added: int, now: datetime) -> None:
    if added:
        change_status(tx, campaign, lifecycle.after_contacts_added(campaign.status), now)
        tx.notify_workers()


def act(store: Store, campaign_id: int, action: str, now: datetime) -> Campaign:
    """Apply a lifecycle action; raises lifecycle.InvalidTransition (409) when not allowed.

    The campaign is locked while the action is decided and written, so it always acts on the status that is stored:
    a pause committed by another process is never overwritten, and a worker claims nothing after it has committed.
    """
    with store.tx() as tx:
        campaign = tx.lock_campaign(campaign_id)
        result = lifecycle.apply_action(campaign.status, campaign.archived, action)
        extra: dict[str, object] = {}
        if result.archived != campaign.archived:
            extra["archived"] = result.archived
        if action == lifecycle.Action.ACTIVATE and campaign.status is CampaignStatus.COOLDOWN:
            # Activating during cooldown starts the next cycle now instead of waiting.
            extra["next_cycle_at"] = now
        change_status(tx, campaign, result.status, now, **extra)
        tx.notify_workers()
        return tx.campaign(campaign_id)


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did: rows added and updated, and every reject with its line and reason."""

    added: int
    updated: int
    result: ImportResult


def default_region(config: CampaignConfig) -> str:
    """The region national numbers are read in: set explicitly, else the campaign time zone's country."""
    region = config.default_region or region_for_timezone(config.timezone)
    if region is None:
        raise ValueError(f"cannot tell a phone region from time zone {config.timezone}; set default_region")
    return region


def import_contacts(
    store: Store,
    campaign_id: int,
    source: Path | bytes,
    now: datetime,
    *,
    if_duplicate: Literal["skip", "update"] = "skip",
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Read a contact file and store its valid rows in one transaction; a bad file changes nothing.

    Rows are written while the file is read (in chunks), so memory does not grow with the file; `progress` gets the
    source bytes read so far. The report's `result.rows` is empty: the rows are in the database.
    """
    with store.tx() as tx:
        campaign = _writable(tx, campaign_id)
        existing = tx.existing_numbers(campaign_id)
        suppressed = barred_numbers(tx, campaign.business_id, campaign_id)
        added = updated = 0

        def write(rows: list[ContactRow]) -> None:
            nonlocal added, updated
            chunk_added, chunk_updated = tx.add_contacts(campaign_id, map(_new_contact, rows), now)
            added += chunk_added
            updated += chunk_updated

        # An ImportFileError half-way through the file rolls back the chunks already written.
        result = read_contacts(
            source,
            default_region=default_region(campaign.config),
            existing=existing,
            suppressed=suppressed,
            if_duplicate=if_duplicate,
            progress=progress,
            sink=write,
        )
        _after_added(tx, campaign, added, now)
    refresh_statistics(store, added)
    return ImportReport(added=added, updated=updated, result=result)


#: Contacts added at once after which PostgreSQL's statistics are refreshed at once.
BULK_ROWS = 10_000


def refresh_statistics(store: Store, added: int) -> None:
    """After a bulk load on PostgreSQL, `VACUUM (ANALYZE)` the contacts table, as autovacuum would only minutes later.

    With statistics from before the load, the planner takes a 100,000-contact campaign for a few rows and sorts all
    of them for every page of the API's contact list; until the new rows' pages are marked all-visible, index-only
    scans still read the table for every row a page skips. Both cost a second a page instead of milliseconds.
    VACUUM cannot run inside a transaction, so it runs after the import's has committed, on its own connection.
    """
    if added < BULK_ROWS or store.engine.dialect.name != "postgresql":
        return
    with store.engine.connect() as connection:
        connection.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM (ANALYZE) contacts")


def _new_contact(row: ContactRow) -> NewContact:
    return NewContact(
        contact=row.contact,
        name=row.name,
        context=row.context,
        external_id=row.external_id,
        input_variables=row.input_variables,
        override_agent_name=row.override_agent_name,
        override_agent_voice_id=row.override_agent_voice_id,
        update=row.update,
    )


# --- campaigns created and edited through the REST API -------------------------------------------------------------

#: Campaign settings a client chooses (the rest comes from the agent and the integration, or stays at its default).
CLIENT_SETTINGS = (
    "name",
    "description",
    "timezone",
    "retries",
    "message_limit",
    "first_message",
    "template",
    "template_alt",
    "scheduling",
    "cycles",
)

#: Fields fixed when a campaign is created (a PATCH naming one is refused with the field's path).
IMMUTABLE_FIELDS = ("agent_id", "integration_id", "integration_type", "cycles.enabled", "cycles.mode")

_SCHEDULED_ONLY = ("schedule", "schedule_start_date", "schedule_end_date")


class AgentNotFound(LookupError):
    """No agent of the business has this id."""


class IntegrationNotFound(LookupError):
    """No integration of the business (or of the named agent) has this id."""


class WrongIntegrationType(ValueError):
    """The integration is of the other channel than the one asked for."""


class InvalidSettings(ValueError):
    """Settings that do not make a valid campaign; `key` is the API error key, `field` the offending path if any."""

    def __init__(self, message: str, key: str = "INVALID_REQUEST", field: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.field = field


def config_from_agent(
    settings: dict[str, object],
    channel: str,
    agent: AgentConfig,
    provider: str,
    provider_options: dict[str, object],
) -> dict[str, object]:
    """The campaign document of an API campaign: the client's settings, the agent's definition and the
    integration's provider (pure; validated by the caller)."""
    document: dict[str, object] = {key: value for key, value in settings.items() if value is not None}
    cycles = document.get("cycles")
    if isinstance(cycles, dict) and not cycles.get("enabled", False):
        # Altur ignores the rest of a disabled cycles block; Herald keeps only the (immutable) mode.
        document["cycles"] = {"enabled": False, **({"mode": cycles["mode"]} if "mode" in cycles else {})}
    document.update(
        channel=channel,
        agent=agent.model_dump(mode="json"),
        provider=provider,
        provider_options=dict(provider_options),
    )
    return document


def _validated(document: dict[str, object]) -> CampaignConfig:
    from herald.campaign_file import CampaignFileError, validate

    try:
        return validate(document)
    except CampaignFileError as error:
        raise InvalidSettings(str(error)) from None


def create_from_agent(
    store: Store,
    business_id: int,
    agent_public_id: str,
    integration_public_id: str,
    integration_type: str,
    settings: dict[str, object],
    now: datetime,
) -> int:
    """Create a campaign of the business on one of its agents' integrations; returns its id.

    Raises AgentNotFound / IntegrationNotFound (also for another business's ids, or an integration of another
    agent), WrongIntegrationType, or InvalidSettings naming every problem.
    """
    from herald.store import schema as t
    from herald.store.tenancy import agent_by_public_id

    with store.tx() as tx:
        agent = agent_by_public_id(tx, business_id, agent_public_id)
        if agent is None:
            raise AgentNotFound(f"agent {agent_public_id} not found")
        integration = next((i for i in agent.integrations if i.public_id == integration_public_id), None)
        if integration is None:
            raise IntegrationNotFound(f"integration {integration_public_id} not found on agent {agent_public_id}")
        if integration.integration_type != integration_type:
            raise WrongIntegrationType(
                f"integration {integration_public_id} is a {integration.integration_type} integration, "
                f"not {integration_type}"
            )
        config = _validated(
            config_from_agent(settings, integration_type, agent.config, integration.provider, integration.options)
        )
        campaign_id = tx.create_campaign(business_id, config, now)
        tx.connection.execute(
            t.campaigns.update()
            .where(t.campaigns.c.id == campaign_id)
            .values(agent_id=agent.id, integration_id=integration.id)
        )
        return campaign_id


def check_update(current: CampaignConfig, changes: dict[str, object]) -> dict[str, object]:
    """The campaign document after a partial update (pure); InvalidSettings for a change the rules refuse."""
    for name in IMMUTABLE_FIELDS:
        head, _, tail = name.partition(".")
        value = changes.get(head)
        if (not tail and head in changes) or (tail and isinstance(value, dict) and tail in value):
            raise InvalidSettings(f"{name} cannot be changed after the campaign is created", "IMMUTABLE_FIELD", name)
    merged = current.model_dump(mode="json")
    for key, value in changes.items():
        if key == "cycles" and isinstance(value, dict):
            if not current.cycles.enabled:
                raise InvalidSettings("this campaign was created without cycles", "CYCLES_NOT_ENABLED")
            misplaced = [name for name in _SCHEDULED_ONLY if name in value and current.cycles.mode != "scheduled"]
            if misplaced:
                raise InvalidSettings(
                    f"{', '.join(misplaced)} apply to scheduled cycles only", "SCHEDULED_MODE_ONLY", "cycles"
                )
            value = {**dict(merged["cycles"]), **value}
        merged[key] = value
    return merged


def update_settings(store: Store, campaign_id: int, changes: dict[str, object]) -> Campaign:
    """Apply a partial update to a campaign's settings; returns the campaign as stored after it.

    The campaign is locked and written only if its status is still the one read (a conditional update), so a change
    the engine made meanwhile is never overwritten: it raises `store.queries.Conflict` instead. A finished campaign
    raises CampaignFinished.
    """
    with store.tx() as tx:
        campaign = _writable(tx, campaign_id)
        config = _validated(check_update(campaign.config, changes))
        tx.update_campaign(
            campaign_id,
            campaign.status,
            campaign.cycle_iteration,
            name=config.name,
            config=config.model_dump(mode="json"),
        )
        return tx.campaign(campaign_id)


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One contact of an API batch, as sent."""

    contact: str | None
    name: str = ""
    context: str = ""
    external_id: str | None = None
    input_variables: dict[str, str] | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """What happened to one item: `created`, `updated`, `skipped_duplicate` (with the contact id) or `failed` (with
    the error key and why)."""

    index: int
    status: Literal["created", "updated", "skipped_duplicate", "failed"]
    contact: str
    contact_id: int | None = None
    error: str | None = None
    detail: str = ""


def _number(normalize: PhoneNormalizer, raw: str | None) -> tuple[str | None, str, str]:
    # (e164, error key, why): the import's checks in its order (missing, then invalid).
    if raw is None or not raw.strip():
        return None, "MISSING_CONTACT", "the contact number is empty"
    e164, why = normalize.check(raw)
    if e164 is None:
        return None, "INVALID_PHONE_NUMBER", f"{raw.strip()!r} is not a valid phone number: {why}"
    return e164, "", ""


def add_contact_batch(
    store: Store,
    campaign_id: int,
    items: Sequence[BatchItem],
    if_duplicate: Literal["skip", "update"],
    now: datetime,
) -> list[BatchResult]:
    """Add a batch of contacts in one transaction, one result per item in order; nothing is silently dropped.

    Numbers are normalised as the CSV import does (campaign region, repairs), opted-out numbers fail as
    `SUPPRESSED`, and a number already in the campaign (or earlier in the batch) is skipped or, with `update`,
    overwritten. The first contacts make a pending campaign ready. Only the batch's numbers are looked up (by the
    campaign's unique number index), never the whole contact list.
    """
    from herald.store.api_queries import contact_ids as existing_ids

    with store.tx() as tx:
        campaign = _writable(tx, campaign_id)
        normalize = PhoneNormalizer(default_region(campaign.config))
        numbers = [_number(normalize, item.contact) for item in items]
        valid = sorted({e164 for e164, _, _ in numbers if e164 is not None})
        # The business's do-not-call list and the campaign's own.
        suppressed = (
            tx.suppressed_numbers(campaign.business_id, valid) | listed_numbers(tx, campaign_id, valid)
            if valid
            else set()
        )
        known = existing_ids(tx, campaign_id, valid) if valid else {}
        chosen: dict[str, int] = {}  # number -> index of the item whose values are stored
        outcome: list[tuple[str | None, str, str, str]] = []  # (e164, status or "failed", error, detail)
        for index, (e164, error, why) in enumerate(numbers):
            if e164 is None:
                outcome.append((None, "failed", error, why))
            elif e164 in suppressed:
                outcome.append((e164, "failed", "SUPPRESSED", f"{e164} is on the opt-out list"))
            elif e164 in known or e164 in chosen:
                if if_duplicate == "update":
                    chosen[e164] = index
                    outcome.append((e164, "updated", "", ""))
                else:
                    outcome.append((e164, "skipped_duplicate", "", ""))
            else:
                chosen[e164] = index
                outcome.append((e164, "created", "", ""))
        new = [number for number in chosen if number not in known]
        rows = [
            NewContact(
                contact=number,
                name=items[index].name,
                context=items[index].context,
                external_id=items[index].external_id,
                input_variables=items[index].input_variables,
            )
            for number, index in chosen.items()
            if number not in known
        ]
        added, _ = tx.add_contacts(campaign_id, rows, now)
        # A number new to the campaign but sent twice with `update`: inserted with the last item's values, the
        # later items reported as updates of it.
        updates = [
            NewContact(
                contact=number,
                name=items[index].name,
                context=items[index].context,
                external_id=items[index].external_id,
                input_variables=items[index].input_variables,
                update=True,
            )
            for number, index in chosen.items()
            if number in known
        ]
        tx.add_contacts(campaign_id, updates, now)
        ids = {**known, **(existing_ids(tx, campaign_id, new) if new else {})}
        _after_added(tx, campaign, added, now)
    return [
        BatchResult(
            index=index,
            status=status,  # type: ignore[arg-type]
            contact=e164 if e164 is not None else (items[index].contact or ""),
            contact_id=None if e164 is None or status == "failed" else ids.get(e164),
            error=error or None,
            detail=detail,
        )
        for index, (e164, status, error, detail) in enumerate(outcome)
    ]
