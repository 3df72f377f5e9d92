"""Campaign and agent configuration: the validated shape of a campaign file (SPEC §2, §5.2, §6).

Pydantic models (frozen) give one validator for the YAML file today and the REST API later.
"""

from __future__ import annotations

from datetime import date
from functools import cached_property
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from herald.domain import links as tracking
from herald.domain.billing import BillingPolicy
from herald.domain.scheduling import WEEKDAYS, DayWindow, Schedule, parse_hhmm
from herald.domain.statuses import Channel, ContactStatus

FieldType = Literal["string", "number", "date", "enum", "bool"]


class ConfigError(ValueError):
    """A campaign definition that cannot be used; the message names every problem."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _check_window(start_text: str, stop_text: str, active: bool) -> None:
    # Refused here rather than at dispatch: a window that can never open would leave a campaign waiting forever.
    start, stop = parse_hhmm(start_text), parse_hhmm(stop_text)
    if start is None:
        raise ValueError("startTime cannot be 24:00")
    if active and stop is not None and stop <= start:
        raise ValueError(
            f"stopTime {stop_text} must be after startTime {start_text} (a window ends by 24:00 of its own day)"
        )


class ScheduleDay(_Model):
    """One weekday of a schedule, `HH:MM` local times as in Altur's `CampaignScheduleDay`."""

    startTime: str = "00:00"  # Altur's field name
    stopTime: str = "24:00"  # Altur's field name
    active: bool = True

    @model_validator(mode="after")
    def _times(self) -> ScheduleDay:
        _check_window(self.startTime, self.stopTime, self.active)
        return self

    def window(self) -> DayWindow:
        """The pure scheduling form of this day."""
        start = parse_hhmm(self.startTime)
        assert start is not None  # _check_window refused "24:00"
        return DayWindow(start=start, stop=parse_hhmm(self.stopTime), active=self.active)


class ScheduleConfig(_Model):
    """`{mon..sun: {startTime, stopTime, active}}`; a day left out is closed."""

    mon: ScheduleDay | None = None
    tue: ScheduleDay | None = None
    wed: ScheduleDay | None = None
    thu: ScheduleDay | None = None
    fri: ScheduleDay | None = None
    sat: ScheduleDay | None = None
    sun: ScheduleDay | None = None

    @model_validator(mode="after")
    def _opens(self) -> ScheduleConfig:
        if not any(day is not None and day.active for day in (getattr(self, name) for name in WEEKDAYS)):
            raise ValueError("the schedule has no active day, so it would never open")
        return self

    def windows(self) -> Schedule:
        """The pure scheduling form of this schedule."""
        days: dict[str, DayWindow] = {}
        for name in WEEKDAYS:
            day = getattr(self, name)
            if day is not None:
                days[name] = day.window()
        return days


class CyclesConfig(_Model):
    """Retry loops over the whole contact list (SPEC §2.3)."""

    enabled: bool = False
    mode: Literal["cooldown", "scheduled"] = "cooldown"
    max_iterations: int = Field(default=2, ge=2, le=12)
    cooldown_minutes: int = Field(default=60, ge=0, le=1440)
    filter_statuses: tuple[ContactStatus, ...] = ()
    filter_tags: tuple[str, ...] = ()
    schedule: ScheduleConfig | None = None
    schedule_start_date: date | None = None
    schedule_end_date: date | None = None

    @model_validator(mode="after")
    def _scheduled_only(self) -> CyclesConfig:
        scheduled_fields = (self.schedule, self.schedule_start_date, self.schedule_end_date)
        if self.mode != "scheduled" and any(value is not None for value in scheduled_fields):
            raise ValueError("schedule, schedule_start_date and schedule_end_date need mode: scheduled")
        if self.mode == "scheduled" and self.enabled and self.schedule is None:
            raise ValueError("mode: scheduled needs a schedule")
        return self


class ExtractField(_Model):
    """A value the agent extracts from a conversation; one export column each."""

    name: str = Field(min_length=1)
    type: FieldType = "string"
    description: str = ""
    options: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _enum_options(self) -> ExtractField:
        if self.type == "enum" and not self.options:
            raise ValueError(f"enum field {self.name!r} needs options")
        return self


class ConversionRule(_Model):
    """When a conversation converts: a tag set, a field present, or the agent's own converted flag."""

    tag: str | None = None
    field: str | None = None
    agent_flag: bool = False

    def holds(self, tags: frozenset[str], extracted: dict[str, str], converted_flag: bool) -> bool:
        """True when this rule says the conversation converted."""
        if self.tag is not None and self.tag in tags:
            return True
        if self.field is not None and extracted.get(self.field, "") != "":
            return True
        return self.agent_flag and converted_flag


class FollowUpPolicy(_Model):
    """Where an agent may place a follow-up call, and how often to retry it if not answered."""

    enabled: bool = True
    startTime: str = "08:00"  # Altur's field name
    stopTime: str = "20:00"  # Altur's field name
    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = (
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
    )
    max_retries: int = Field(default=1, ge=0, le=10)

    @model_validator(mode="after")
    def _times(self) -> FollowUpPolicy:
        _check_window(self.startTime, self.stopTime, self.enabled)
        if self.enabled and not self.days:
            raise ValueError("follow-ups need at least one day")
        return self

    def windows(self) -> Schedule:
        """The follow-up window as a schedule."""
        day = ScheduleDay(startTime=self.startTime, stopTime=self.stopTime).window()
        return {name: day for name in self.days}


class AgentConfig(_Model):
    """An agent definition: tags and extractable fields (export column order), conversion, follow-ups."""

    name: str = "Agent"
    voice_id: str | None = None
    tags: tuple[str, ...] = ()
    fields: tuple[ExtractField, ...] = ()
    conversion: ConversionRule = ConversionRule(agent_flag=True)
    follow_ups: FollowUpPolicy = FollowUpPolicy()

    @model_validator(mode="after")
    def _unique(self) -> AgentConfig:
        if len(set(self.tags)) != len(self.tags):
            raise ValueError("agent tags must be unique")
        names = [field.name for field in self.fields]
        if len(set(names)) != len(names):
            raise ValueError("agent field names must be unique")
        if self.conversion.tag is not None and self.conversion.tag not in self.tags:
            raise ValueError(f"conversion tag {self.conversion.tag!r} is not one of the agent's tags")
        if self.conversion.field is not None and self.conversion.field not in names:
            raise ValueError(f"conversion field {self.conversion.field!r} is not one of the agent's fields")
        return self

    @property
    def field_names(self) -> tuple[str, ...]:
        """Extractable field names, in export order."""
        return tuple(field.name for field in self.fields)


class BillingConfig(_Model):
    """How calls are billed (SPEC §5.2)."""

    machine_cap_seconds: int = Field(default=5, ge=0)
    unknown_as: Literal["human", "machine"] = "human"

    def policy(self) -> BillingPolicy:
        """The pure billing policy."""
        return BillingPolicy(machine_cap_seconds=self.machine_cap_seconds, unknown_as=self.unknown_as)


class TrackedLink(_Model):
    """A URL tracked in a WhatsApp campaign's messages (SPEC §7.5 `link_clicks`).

    The template variable `variable` (default: the link's `id`) carries `{HERALD_PUBLIC_URL}/l/{token}`, and any
    `{link:ID}` in a contact's variable text is replaced by the same URL. The redirect leads to `url`, or, when `url`
    is left out, to the contact's own value of `variable` (a per-contact link, e.g. a payment page).
    """

    id: str = Field(pattern=tracking.LINK_ID)
    name: str = Field(default="", max_length=255)
    url: str | None = Field(default=None, max_length=tracking.MAX_URL)
    variable: str | None = Field(default=None, min_length=1, max_length=64)
    #: `token`: the variable gets only the token, for a WhatsApp URL button approved as `{HERALD_PUBLIC_URL}/l/{{1}}`.
    carries: Literal["url", "token"] = "url"

    @field_validator("url")
    @classmethod
    def _web_url(cls, value: str | None) -> str | None:
        if value is not None and not tracking.is_web_url(value):
            raise ValueError("must be an absolute http:// or https:// URL without spaces")
        return value

    def spec(self) -> tracking.LinkSpec:
        """The pure form of this link (its name defaults to its id)."""
        return tracking.LinkSpec(self.id, self.name or self.id, self.variable or self.id, self.url, self.carries)


#: The longest retry delay or response timeout a campaign may set (a year and a day): longer ones were mistakes, and
#: a timer past year 9999 cannot be stored.
MAX_TIMER_DAYS = 366

_PHONE_ONLY = ("first_message",)
_WHATSAPP_ONLY = ("template", "template_alt", "message_limit", "response_timeout_hours", "links")


class CampaignConfig(_Model):
    """Everything a campaign file (or, later, the API) sets about one campaign."""

    name: str = Field(min_length=1, max_length=255)
    description: str = ""
    channel: Channel
    agent: AgentConfig = AgentConfig()
    provider: str = "simulator"
    provider_options: dict[str, Any] = Field(default_factory=dict)
    timezone: str = "America/Mexico_City"
    default_region: str | None = None
    local_time: bool = False
    retries: int = Field(default=1, ge=0, le=5)
    # Fractions reach seconds (0.05 = 3 s) for tests and local demos; an integer stays an int, so files and exports
    # print as before. Bounded so that every delay added to a date stays a date (a year is plenty for a retry).
    retry_delay_minutes: int | float = Field(default=60, ge=0, le=MAX_TIMER_DAYS * 24 * 60, allow_inf_nan=False)
    failed_retry_limit: int = Field(default=1, ge=0, le=10)
    concurrency_limit: int = Field(default=10, ge=1, le=100_000)
    # WhatsApp-only settings stay None on phone campaigns; read them through the properties below.
    message_limit: int | None = Field(default=None, ge=1, le=10_000)
    response_timeout_hours: float | None = Field(default=None, gt=0, le=MAX_TIMER_DAYS * 24, allow_inf_nan=False)
    first_message: str | None = None
    template: str | None = None
    template_alt: str | None = None
    links: tuple[TrackedLink, ...] | None = None
    scheduling: ScheduleConfig | None = None
    cycles: CyclesConfig = CyclesConfig()
    billing: BillingConfig = BillingConfig()

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown IANA time zone {value!r}") from error
        return value

    @model_validator(mode="after")
    def _channel_fields(self) -> CampaignConfig:
        other = _WHATSAPP_ONLY if self.channel is Channel.PHONE_CALL else _PHONE_ONLY
        wrong = [name for name in other if getattr(self, name) is not None]
        if wrong:
            raise ValueError(f"{', '.join(wrong)} cannot be set on a {self.channel.value} campaign")
        return self

    @model_validator(mode="after")
    def _filter_tags_known(self) -> CampaignConfig:
        unknown = [tag for tag in self.cycles.filter_tags if tag not in self.agent.tags]
        if unknown:
            raise ValueError(f"cycles.filter_tags names tags the agent does not have: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _links_distinct(self) -> CampaignConfig:
        specs = self.tracked_links
        for what, values in (("id", [s.id for s in specs]), ("variable", [s.variable for s in specs])):
            repeated = sorted({value for value in values if values.count(value) > 1})
            if repeated:
                raise ValueError(f"links: two links have the same {what}: {', '.join(repeated)}")
        return self

    @cached_property
    def tracked_links(self) -> tuple[tracking.LinkSpec, ...]:
        """The campaign's tracked links, in order (none on phone campaigns)."""
        return tuple(link.spec() for link in self.links or ())

    @property
    def daily_message_limit(self) -> int:
        """WhatsApp sends per day (default 250, Meta's first messaging tier)."""
        return self.message_limit if self.message_limit is not None else 250

    @property
    def response_timeout(self) -> float:
        """Hours a WhatsApp contact has to answer before it counts as no response (default 24)."""
        return self.response_timeout_hours if self.response_timeout_hours is not None else 24.0

    @cached_property
    def zone(self) -> ZoneInfo:
        """The campaign time zone."""
        return ZoneInfo(self.timezone)


def _problems(error: ValidationError, what: str) -> ConfigError:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or what
        problems.append(f"{where}: {item['msg']}")
    return ConfigError(f"invalid {what}: " + "; ".join(problems))


def parse_campaign(data: Any) -> CampaignConfig:
    """Validate a campaign definition (a dict from YAML or JSON); raise ConfigError naming every problem."""
    try:
        return CampaignConfig.model_validate(data)
    except ValidationError as error:
        raise _problems(error, "campaign") from None


def parse_agent(data: Any) -> AgentConfig:
    """Validate an agent definition (a campaign's `agent:` block); raise ConfigError naming every problem."""
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as error:
        raise _problems(error, "agent") from None
