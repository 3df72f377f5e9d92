"""What the engine derives once per campaign from its configuration."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from herald.domain.billing import BillingPolicy
from herald.domain.rules import RetryPolicy
from herald.domain.scheduling import Schedule
from herald.imports.phones import timezone_for_number
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
    local_time: bool = False

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
            local_time=config.local_time,
        )

    def zone_for(self, number: str) -> ZoneInfo:
        """The zone a contact's hours are read in: its own with `local_time` (when its number has exactly one),
        else the campaign's."""
        if self.local_time:
            return _number_zone(number) or self.zone
        return self.zone

    def local_day_start(self, at: datetime) -> datetime:
        """Midnight (campaign time) of the day `at` falls in, as UTC."""
        local = at.astimezone(self.zone)
        return datetime.combine(local.date(), time(0), tzinfo=self.zone).astimezone(UTC)

    def next_local_day(self, at: datetime) -> datetime:
        """The next midnight (campaign time) after `at`, as UTC."""
        local = at.astimezone(self.zone)
        return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=self.zone).astimezone(UTC)


@functools.lru_cache(maxsize=65_536)
def _number_zone(number: str) -> ZoneInfo | None:
    # Parsing a number costs far more than a step's other work per contact; campaigns repeat numbers every attempt.
    name = timezone_for_number(number)
    return ZoneInfo(name) if name is not None else None
