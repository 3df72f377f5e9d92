"""What the engine derives once per campaign from its configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from herald.domain.billing import BillingPolicy
from herald.domain.rules import RetryPolicy
from herald.domain.scheduling import Schedule
from herald.store.records import Campaign


@dataclass(frozen=True, slots=True)
class CampaignContext:
    """A campaign with its rules' parameters ready to use."""

    campaign: Campaign
    policy: RetryPolicy
    billing: BillingPolicy
    zone: ZoneInfo
    window: Schedule | None
    follow_up_window: Schedule
    cycle_window: Schedule | None
    filter_statuses: frozenset[str]
    filter_tags: frozenset[str]

    @classmethod
    def of(cls, campaign: Campaign) -> CampaignContext:
        """Derive the context of `campaign`."""
        config = campaign.config
        cycles = config.cycles
        return cls(
            campaign=campaign,
            policy=RetryPolicy.of(config),
            billing=config.billing.policy(),
            zone=ZoneInfo(config.timezone),
            window=config.scheduling.windows() if config.scheduling is not None else None,
            follow_up_window=config.agent.follow_ups.windows(),
            cycle_window=cycles.schedule.windows() if cycles.schedule is not None else None,
            filter_statuses=frozenset(status.value for status in cycles.filter_statuses),
            filter_tags=frozenset(cycles.filter_tags),
        )

    def local_day_start(self, at: datetime) -> datetime:
        """Midnight (campaign time) of the day `at` falls in, as UTC."""
        local = at.astimezone(self.zone)
        return datetime.combine(local.date(), time(0), tzinfo=self.zone).astimezone(UTC)

    def next_local_day(self, at: datetime) -> datetime:
        """The next midnight (campaign time) after `at`, as UTC."""
        local = at.astimezone(self.zone)
        return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC)
