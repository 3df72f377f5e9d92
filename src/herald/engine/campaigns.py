"""Campaign operations a user asks for: create, load contacts, activate/pause/resume/archive.

Every status change goes through `change_status`, which also writes the campaign log (the webhook outbox).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from herald.domain import lifecycle
from herald.domain.campaign import CampaignConfig
from herald.domain.statuses import CampaignStatus
from herald.ids import IdFactory
from herald.imports import ContactRow, ImportResult, read_contacts, region_for_timezone
from herald.store.campaign_dnc import barred_numbers
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
    return ImportReport(added=added, updated=updated, result=result)


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
