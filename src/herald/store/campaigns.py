"""Campaigns (and their businesses and log) as `Tx` reads and writes them."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Text, and_, bindparam, insert, select, type_coerce, update

from herald.domain.campaign import CampaignConfig
from herald.domain.statuses import CampaignStatus, Channel
from herald.store import schema as t
from herald.store.base import Conflict, NotFound, TxBase
from herald.store.records import Campaign

_CAMPAIGN_COLUMNS = [*t.campaigns.c, t.businesses.c.public_id.label("business_public_id")]
#: Every campaign with its business's public id, in the order of _CAMPAIGN_COLUMNS (add a WHERE, a lock).
CAMPAIGN_SELECT = select(*_CAMPAIGN_COLUMNS).join(t.businesses, t.businesses.c.id == t.campaigns.c.business_id)


_CONFIGS: dict[str, CampaignConfig] = {}


def _config(raw: Any) -> CampaignConfig:
    # Validating a campaign's configuration is costly and the engine reads campaigns every step: reuse it.
    key = json.dumps(raw, sort_keys=True, separators=(",", ":"))
    found = _CONFIGS.get(key)
    if found is None:
        if len(_CONFIGS) >= 1024:
            _CONFIGS.clear()
        found = _CONFIGS[key] = CampaignConfig.model_validate(raw)
    return found


_RAW_CONFIGS: dict[str, CampaignConfig] = {}


def _config_text(raw: Any) -> CampaignConfig:
    # The configuration as stored text (the engine's campaigns query): no parsing at all once seen.
    if not isinstance(raw, str):
        return _config(raw)
    found = _RAW_CONFIGS.get(raw)
    if found is None:
        if len(_RAW_CONFIGS) >= 1024:
            _RAW_CONFIGS.clear()
        found = _RAW_CONFIGS[raw] = _config(json.loads(raw))
    return found


def campaign_config(raw: Any) -> CampaignConfig:
    """A campaign's configuration from its stored column, as text or decoded, validated once per process."""
    return _config_text(raw)


def campaign_from_row(row: Sequence[Any], config: Callable[[Any], CampaignConfig] = _config) -> Campaign:
    """A campaign from a row of `CAMPAIGN_SELECT` (positional, in the order of its columns)."""
    return Campaign(
        id=row[0],
        business_id=row[1],
        name=row[2],
        channel=Channel(row[3]),
        status=CampaignStatus(row[4]),
        archived=bool(row[5]),
        config=config(row[6]),
        created_at=row[7],
        started_at=row[8],
        ended_at=row[9],
        cycle_iteration=row[10],
        cycle_last_iteration_at=row[11],
        next_cycle_at=row[12],
        agent_id=row[13],
        integration_id=row[14],
        business_public_id=row[15],
    )


_CAMPAIGNS_BY_STATUS = (
    select(
        *(
            type_coerce(column, Text).label(column.name) if column.name == "config" else column
            for column in t.campaigns.c
        ),
        t.businesses.c.public_id.label("business_public_id"),
    )
    .join(t.businesses, t.businesses.c.id == t.campaigns.c.business_id)
    .where(t.campaigns.c.status.in_(bindparam("statuses", expanding=True)))
    .order_by(t.campaigns.c.id)
)


class CampaignQueries(TxBase):
    """Campaigns, their businesses and their log."""

    def ensure_business(self, name: str, public_id: str, now: datetime) -> int:
        """The id of the business called `name`, created with `public_id` if missing."""
        found = self.connection.execute(select(t.businesses.c.id).where(t.businesses.c.name == name)).scalar()
        if found is not None:
            return int(found)
        result = self.connection.execute(
            insert(t.businesses).values(name=name, public_id=public_id, created_at=now).returning(t.businesses.c.id)
        )
        return int(result.scalar_one())

    def create_campaign(self, business_id: int, config: CampaignConfig, now: datetime) -> int:
        """Store a new campaign (status `pending`) and return its id."""
        result = self.connection.execute(
            insert(t.campaigns)
            .values(
                business_id=business_id,
                name=config.name,
                channel=config.channel.value,
                status=CampaignStatus.PENDING.value,
                archived=False,
                config=config.model_dump(mode="json"),
                created_at=now,
                cycle_iteration=1,
            )
            .returning(t.campaigns.c.id)
        )
        return int(result.scalar_one())

    def campaign(self, campaign_id: int) -> Campaign:
        """One campaign; NotFound if there is none."""
        row = self.connection.execute(CAMPAIGN_SELECT.where(t.campaigns.c.id == campaign_id)).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return campaign_from_row(row)

    def lock_campaign(self, campaign_id: int) -> Campaign:
        """One campaign, locked until the transaction ends: on PostgreSQL `FOR UPDATE`, so claims, cycle changes and
        a user's pause of one campaign happen one after the other; on SQLite the write transaction holds the lock."""
        query = CAMPAIGN_SELECT.where(t.campaigns.c.id == campaign_id)
        if self.connection.dialect.name == "postgresql":
            query = query.with_for_update(of=t.campaigns)
        row = self.connection.execute(query).first()
        if row is None:
            raise NotFound(f"campaign {campaign_id} does not exist")
        return campaign_from_row(row)

    def campaigns(self, statuses: Iterable[CampaignStatus] | None = None, *, lock: bool = False) -> list[Campaign]:
        """Campaigns, oldest first, optionally only those in `statuses` (with `lock`, locked as `lock_campaign`)."""
        if statuses is not None:
            if lock and self.connection.dialect.name == "postgresql":
                rows = self.connection.execute(
                    _CAMPAIGNS_BY_STATUS.with_for_update(of=t.campaigns),
                    {"statuses": [status.value for status in statuses]},
                ).all()
            else:
                rows = self._rows(_CAMPAIGNS_BY_STATUS, {"statuses": [status.value for status in statuses]})
            return [campaign_from_row(row, _config_text) for row in rows]
        return [campaign_from_row(row) for row in self.connection.execute(CAMPAIGN_SELECT.order_by(t.campaigns.c.id))]

    def update_campaign(
        self, campaign_id: int, expected: CampaignStatus, expected_cycle: int | None = None, **values: Any
    ) -> None:
        """Set campaign columns if the campaign is still in `expected` status (and cycle); Conflict otherwise, so a
        change made by another process (a pause, a cycle start) is never overwritten."""
        if "status" in values and isinstance(values["status"], CampaignStatus):
            values["status"] = values["status"].value
        condition = and_(t.campaigns.c.id == campaign_id, t.campaigns.c.status == expected.value)
        if expected_cycle is not None:
            condition = and_(condition, t.campaigns.c.cycle_iteration == expected_cycle)
        result = self.connection.execute(update(t.campaigns).where(condition).values(**values))
        if result.rowcount != 1:
            raise Conflict(f"campaign {campaign_id} changed meanwhile (it is no longer {expected.value})")

    def log(self, campaign_id: int, kind: str, data: dict[str, Any], now: datetime) -> None:
        """Append to the campaign log (status changes, cycle ends): the outbox for outgoing webhooks."""
        self.connection.execute(
            insert(t.campaign_log).values(campaign_id=campaign_id, kind=kind, data=data, occurred_at=now)
        )

    def campaign_log(self, campaign_id: int) -> list[tuple[str, datetime, dict[str, Any]]]:
        """The campaign's log, in order."""
        rows = self.connection.execute(
            select(t.campaign_log.c.kind, t.campaign_log.c.occurred_at, t.campaign_log.c.data)
            .where(t.campaign_log.c.campaign_id == campaign_id)
            .order_by(t.campaign_log.c.id)
        )
        return [(row.kind, row.occurred_at, dict(row.data)) for row in rows]
