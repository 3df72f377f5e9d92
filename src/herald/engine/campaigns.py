"""Campaign operations a user asks for: create, load contacts, activate/pause/resume/archive.

Every status change goes through `change_status`, which also writes the campaign log (the webhook outbox).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from herald.domain import lifecycle
from herald.domain.campaign import CampaignConfig
from herald.domain.statuses import CampaignStatus
from herald.ids import IdFactory
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
    tx.update_campaign(campaign.id, **columns)


def create_campaign(store: Store, config: CampaignConfig, now: datetime, ids: IdFactory) -> int:
    """Store a new campaign for the default business; returns its id."""
    with store.tx() as tx:
        business_id = tx.ensure_business(DEFAULT_BUSINESS, ids.uuid(), now)
        return tx.create_campaign(business_id, config, now)


def add_contacts(store: Store, campaign_id: int, contacts: Sequence[NewContact], now: datetime) -> tuple[int, int]:
    """Add (or update) contacts; the first contacts make a pending campaign ready. Returns (added, updated)."""
    with store.tx() as tx:
        campaign = tx.campaign(campaign_id)
        if campaign.status is CampaignStatus.FINISHED:
            raise CampaignFinished(f"campaign {campaign_id} is finished and read-only")
        added, updated = tx.add_contacts(campaign_id, contacts, now)
        if added:
            change_status(tx, campaign, lifecycle.after_contacts_added(campaign.status), now)
        return added, updated


def act(store: Store, campaign_id: int, action: str, now: datetime) -> Campaign:
    """Apply a lifecycle action; raises lifecycle.InvalidTransition (409) when not allowed."""
    with store.tx() as tx:
        campaign = tx.campaign(campaign_id)
        result = lifecycle.apply_action(campaign.status, campaign.archived, action)
        extra: dict[str, object] = {}
        if result.archived != campaign.archived:
            extra["archived"] = result.archived
        if action == lifecycle.Action.ACTIVATE and campaign.status is CampaignStatus.COOLDOWN:
            # Activating during cooldown starts the next cycle now instead of waiting.
            extra["next_cycle_at"] = now
        change_status(tx, campaign, result.status, now, **extra)
        return tx.campaign(campaign_id)
