"""The new-campaign form as data (pure): its posted fields into a campaign document, and the domain's validation
errors back onto the fields they are about.

The document is the one a campaign file holds (SPEC §2), so the form, the YAML upload, `herald campaign create` and
the REST API all end in the same validator (`CampaignConfig` and the provider's options model); the form adds no rule
of its own, only the reading of text inputs (blank = the default, lists separated by commas).

Input names are the document's dotted paths (`cycles.max_iterations`, `scheduling.mon.startTime`,
`agent.fields.0.name`), so that the validator's error locations name the input to show them next to.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from pydantic import ValidationError

from herald.domain.campaign import CampaignConfig
from herald.domain.scheduling import WEEKDAYS
from herald.providers import registry

#: The agent choice that means "the agent defined on this form" rather than one of the business's agents.
NEW_AGENT = "new"
#: Rows of extractable fields the form offers (submitted rows are kept, plus this many empty ones).
EMPTY_FIELD_ROWS = 3
DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
#: What a fresh form shows: the domain's defaults, and office hours on weekdays.
DEFAULTS: dict[str, str] = {
    "channel": "phone_call",
    "timezone": "America/Mexico_City",
    "retries": "1",
    "retry_delay_minutes": "60",
    "failed_retry_limit": "1",
    "concurrency_limit": "10",
    "cycles.mode": "cooldown",
    "cycles.max_iterations": "2",
    "cycles.cooldown_minutes": "60",
    "billing.machine_cap_seconds": "5",
    "billing.unknown_as": "human",
    "provider": "simulator",
    "agent": NEW_AGENT,
    "agent.name": "Agent",
    "agent.conversion.agent_flag": "1",
    "agent.follow_ups.enabled": "1",
    "agent.follow_ups.startTime": "08:00",
    "agent.follow_ups.stopTime": "20:00",
    "agent.follow_ups.max_retries": "1",
    **{f"agent.follow_ups.days.{day}": "1" for day in ("mon", "tue", "wed", "thu", "fri", "sat")},
    **{f"scheduling.{day}.startTime": "09:00" for day in WEEKDAYS},
    **{f"scheduling.{day}.stopTime": "19:00" for day in WEEKDAYS},
    **{f"scheduling.{day}.active": "1" for day in ("mon", "tue", "wed", "thu", "fri")},
    **{f"cycles.schedule.{day}.startTime": "09:00" for day in WEEKDAYS},
    **{f"cycles.schedule.{day}.stopTime": "19:00" for day in WEEKDAYS},
}
_WHOLE_FORM = "form"
_VALUE_ERROR = re.compile(r"^(Value error|Assertion failed), ")


class Form(Protocol):
    """What the form is read from: Starlette's FormData (or any multi-dict)."""

    def get(self, key: str, /) -> Any: ...

    def getlist(self, key: str, /) -> list[Any]: ...


def _text(form: Form, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _checked(form: Form, name: str) -> bool:
    return _text(form, name) not in ("", "0", "off", "false")


def _words(text: str) -> list[str]:
    return [word.strip() for word in text.split(",") if word.strip()]


def _put(document: dict[str, Any], form: Form, *names: str) -> None:
    """Copy the non-blank inputs `names` (dotted paths) into the document; blank ones keep the domain's default."""
    for name in names:
        value = _text(form, name)
        if value:
            target = document
            *parents, leaf = name.split(".")
            for parent in parents:
                target = target.setdefault(parent, {})
            target[leaf] = value


def _schedule(form: Form, prefix: str) -> dict[str, Any]:
    days: dict[str, Any] = {}
    for day in WEEKDAYS:
        entry: dict[str, Any] = {"active": _checked(form, f"{prefix}.{day}.active")}
        for edge in ("startTime", "stopTime"):
            value = _text(form, f"{prefix}.{day}.{edge}")
            if value:
                entry[edge] = value
        days[day] = entry
    return days


def used_field_rows(form: Form) -> list[int]:
    """The indexes of the extractable-field rows with a name, in order (blank rows are skipped)."""
    used = []
    for key in _keys(form):
        found = re.fullmatch(r"agent\.fields\.(\d+)\.name", key)
        if found and _text(form, key):
            used.append(int(found.group(1)))
    return sorted(used)


def field_rows(form: Form | None) -> list[int]:
    """The indexes of the extractable-field rows to show: up to the last submitted one, and a few empty ones."""
    used = used_field_rows(form) if form is not None else []
    return list(range((used[-1] + 1 if used else 0) + EMPTY_FIELD_ROWS))


def remap_field_errors(errors: dict[str, str], used: list[int]) -> dict[str, str]:
    """Errors about `agent.fields.N…` (N counts the named rows) moved to the form row they came from."""
    moved: dict[str, str] = {}
    for key, message in errors.items():
        found = re.fullmatch(r"agent\.fields\.(\d+)(\..*)?", key)
        if found and int(found.group(1)) < len(used):
            key = f"agent.fields.{used[int(found.group(1))]}{found.group(2) or ''}"
        moved[key] = message
    return moved


def _keys(form: Form) -> Iterable[str]:
    keys = getattr(form, "keys", None)
    return [str(key) for key in keys()] if callable(keys) else []


def agent_document(form: Form) -> dict[str, Any]:
    """The agent defined on the form (tags, extractable fields, conversion rule, follow-ups)."""
    agent: dict[str, Any] = {"tags": _words(_text(form, "agent.tags"))}
    _put(agent, _Prefixed(form, "agent."), "name", "voice_id")
    fields = []
    for index in used_field_rows(form):
        name = _text(form, f"agent.fields.{index}.name")
        field: dict[str, Any] = {"name": name, "type": _text(form, f"agent.fields.{index}.type") or "string"}
        description = _text(form, f"agent.fields.{index}.description")
        if description:
            field["description"] = description
        options = _words(_text(form, f"agent.fields.{index}.options"))
        if options:
            field["options"] = options
        fields.append(field)
    agent["fields"] = fields
    conversion: dict[str, Any] = {"agent_flag": _checked(form, "agent.conversion.agent_flag")}
    _put(conversion, _Prefixed(form, "agent.conversion."), "tag", "field")
    agent["conversion"] = conversion
    follow_ups: dict[str, Any] = {
        "enabled": _checked(form, "agent.follow_ups.enabled"),
        "days": [day for day in WEEKDAYS if _checked(form, f"agent.follow_ups.days.{day}")],
    }
    _put(follow_ups, _Prefixed(form, "agent.follow_ups."), "startTime", "stopTime", "max_retries")
    agent["follow_ups"] = follow_ups
    return agent


class _Prefixed:
    """The inputs under one prefix, by their names below it."""

    def __init__(self, form: Form, prefix: str) -> None:
        self.form = form
        self.prefix = prefix

    def get(self, key: str, /) -> Any:
        return self.form.get(self.prefix + key)

    def getlist(self, key: str, /) -> list[Any]:
        return self.form.getlist(self.prefix + key)


def settings_document(form: Form) -> dict[str, Any]:
    """Every campaign setting of the form except the agent and provider: the `settings` of the REST API's create."""
    document: dict[str, Any] = {"local_time": _checked(form, "local_time")}
    _put(
        document,
        form,
        "name",
        "description",
        "timezone",
        "default_region",
        "retries",
        "retry_delay_minutes",
        "failed_retry_limit",
        "concurrency_limit",
        "message_limit",
        "response_timeout_hours",
        "first_message",
        "template",
        "template_alt",
        "billing.machine_cap_seconds",
        "billing.unknown_as",
    )
    if _checked(form, "scheduling.enabled"):
        document["scheduling"] = _schedule(form, "scheduling")
    cycles: dict[str, Any] = {
        "enabled": _checked(form, "cycles.enabled"),
        "filter_statuses": [str(status) for status in form.getlist("cycles.filter_statuses") if str(status)],
        "filter_tags": _words(_text(form, "cycles.filter_tags")),
    }
    _put(cycles, _Prefixed(form, "cycles."), "mode", "max_iterations", "cooldown_minutes")
    if cycles.get("mode") == "scheduled":
        cycles["schedule"] = _schedule(form, "cycles.schedule")
        _put(cycles, _Prefixed(form, "cycles."), "schedule_start_date", "schedule_end_date")
    document["cycles"] = cycles
    return document


def provider_options(form: Form) -> tuple[dict[str, Any], str | None]:
    """The provider options typed on the form (a YAML mapping, blank = none), or an error message."""
    import yaml

    text = _text(form, "provider_options")
    if not text:
        return {}, None
    try:
        found = yaml.safe_load(text)
    except yaml.YAMLError as error:
        return {}, f"not YAML: {' '.join(str(error).split())[:200]}"
    if not isinstance(found, dict):
        return {}, "expected a mapping of options (key: value lines)"
    return {str(key): value for key, value in found.items()}, None


# --- errors back onto the form -------------------------------------------------------------------------------------


def _clean(message: str) -> str:
    return _VALUE_ERROR.sub("", message)


def place(location: Sequence[str | int], message: str, known: Iterable[str]) -> list[str]:
    """The form keys an error at `location` (a validator location) belongs to: the inputs below it that the message
    names (by their path below it, with dots or spaces); else the input or group at `location`; else the nearest
    enclosing group; else the whole form."""
    names = set(known)
    key = ".".join(str(part) for part in location)
    named = []
    for name in names:
        if key and not name.startswith(key + "."):
            continue
        if any(other.startswith(name + ".") for other in names):
            continue  # a group (`agent`, `cycles`): a word of plain English more often than a reference to it
        relative = name[len(key) + 1 :] if key else name
        pattern = r"[ .]".join(re.escape(part) for part in relative.split("."))
        if re.search(rf"(?<![\w.]){pattern}(?![\w])", message):
            named.append(name)
    if named:
        return sorted(named)
    if key in names:
        return [key]
    while key:
        key = key.rpartition(".")[0]
        if key in names:
            return [key]
    return [_WHOLE_FORM]


def problems(document: Mapping[str, Any], known: Iterable[str]) -> dict[str, str]:
    """The domain validator's complaints about a campaign document, by form key (empty when it is valid)."""
    known = list(known)
    found: dict[str, str] = {}
    try:
        config = CampaignConfig.model_validate(dict(document))
    except ValidationError as error:
        for item in error.errors():
            message = _clean(str(item["msg"]))
            for key in place(tuple(item["loc"]), message, known):
                found[key] = "; ".join(filter(None, (found.get(key), message)))
        return found
    try:
        registry.check_channel(config.provider, config.channel.value)
    except (registry.UnknownProvider, registry.UnsupportedChannel) as error:
        found["provider"] = str(error).strip("'\"")
        return found
    try:
        registry.validate_options(config.provider, config.provider_options)
    except (registry.UnknownProvider, registry.ProviderOptionsError) as error:
        found["provider_options"] = str(error).strip("'\"")
    return found


#: Every key the form can show an error at: its inputs and the groups they are in.
FORM_KEYS: frozenset[str] = frozenset(
    {
        _WHOLE_FORM,
        "name",
        "description",
        "channel",
        "timezone",
        "default_region",
        "local_time",
        "agent",
        "provider",
        "provider_options",
        "retries",
        "retry_delay_minutes",
        "failed_retry_limit",
        "concurrency_limit",
        "message_limit",
        "response_timeout_hours",
        "first_message",
        "template",
        "template_alt",
        "scheduling",
        "cycles",
        "cycles.enabled",
        "cycles.mode",
        "cycles.max_iterations",
        "cycles.cooldown_minutes",
        "cycles.filter_statuses",
        "cycles.filter_tags",
        "cycles.schedule",
        "cycles.schedule_start_date",
        "cycles.schedule_end_date",
        "billing",
        "billing.machine_cap_seconds",
        "billing.unknown_as",
        "agent.name",
        "agent.voice_id",
        "agent.tags",
        "agent.fields",
        "agent.conversion",
        "agent.conversion.tag",
        "agent.conversion.field",
        "agent.follow_ups",
        "agent.follow_ups.startTime",
        "agent.follow_ups.stopTime",
        "agent.follow_ups.days",
        "agent.follow_ups.max_retries",
        *(f"{prefix}.{day}" for prefix in ("scheduling", "cycles.schedule") for day in WEEKDAYS),
        *(f"agent.fields.{index}" for index in range(100)),
        *(f"agent.fields.{index}.{part}" for index in range(100) for part in ("name", "type", "options")),
    }
)
