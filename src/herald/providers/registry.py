"""Which providers exist, what options each takes, and how to build its outbound and inbound halves.

A campaign names its provider (`provider:` in the campaign file); everything that needs one asks here, so a new
provider is one entry in `_PROVIDERS` and nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

from pydantic import BaseModel, ValidationError

from herald.providers.base import Inbound, Outbound


class UnknownProvider(LookupError):
    """No provider of that name."""


class ProviderOptionsError(ValueError):
    """A campaign's `provider_options` do not fit its provider; the message names every problem."""


class UnsupportedChannel(ValueError):
    """The provider does not work on that channel (Twilio and Vapi place calls, WhatsApp Cloud sends messages)."""


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One provider: its options model, and factories (imported lazily, so the CLI starts fast)."""

    name: str
    module: str
    options: str
    outbound: str
    inbound: str | None
    #: Honours Herald's id as an idempotency key, so a start whose answer was lost is sent again (else: worker_lost).
    idempotent: bool = False
    #: `(options, url) -> httpx.Auth | None`: the credentials the provider's recording URLs need (None: none).
    recording_auth: str | None = None
    #: The campaign channels it works on.
    channels: frozenset[str] = frozenset({"phone_call", "whatsapp"})

    def _attribute(self, attribute: str) -> Any:
        return getattr(import_module(self.module), attribute)

    def options_model(self) -> type[BaseModel]:
        """The pydantic model of this provider's `provider_options`."""
        model: type[BaseModel] = self._attribute(self.options)
        return model

    def make_outbound(self, options: BaseModel) -> Outbound:
        """An outbound adapter for validated options."""
        factory: Callable[[BaseModel], Outbound] = self._attribute(self.outbound)
        return factory(options)

    def make_inbound(self) -> Inbound | None:
        """The inbound adapter (webhook parser), if the provider sends webhooks."""
        if self.inbound is None:
            return None
        factory: Callable[[], Inbound] = self._attribute(self.inbound)
        return factory()

    def recording_credentials(self, options: BaseModel, url: str) -> Any:
        """The credentials (an `httpx.Auth`) to fetch one of this provider's recordings, None when it needs none."""
        if self.recording_auth is None:
            return None
        return self._attribute(self.recording_auth)(options, url)


_CALLS = frozenset({"phone_call"})
_MESSAGES = frozenset({"whatsapp"})

_PROVIDERS: dict[str, ProviderSpec] = {
    spec.name: spec
    for spec in (
        ProviderSpec("simulator", "herald.providers.simulator", "SimulatorOptions", "live_simulator", None),
        ProviderSpec("http", "herald.providers.http", "HttpOptions", "HttpOutbound", "HttpInbound", idempotent=True),
        ProviderSpec("vapi", "herald.providers.vapi", "VapiOptions", "VapiOutbound", "VapiInbound", channels=_CALLS),
        ProviderSpec(
            "whatsapp_cloud",
            "herald.providers.whatsapp_cloud",
            "WhatsAppCloudOptions",
            "WhatsAppCloudOutbound",
            "WhatsAppCloudInbound",
            channels=_MESSAGES,
        ),
        ProviderSpec(
            "twilio",
            "herald.providers.twilio",
            "TwilioOptions",
            "TwilioOutbound",
            "TwilioInbound",
            recording_auth="recording_auth",
            channels=_CALLS,
        ),
    )
}


def names() -> list[str]:
    """Every provider a campaign may name."""
    return sorted(_PROVIDERS)


def spec(name: str) -> ProviderSpec:
    """The provider called `name`; UnknownProvider listing the known ones otherwise."""
    found = _PROVIDERS.get(name)
    if found is None:
        raise UnknownProvider(f"unknown provider {name!r}; known providers: {', '.join(names())}")
    return found


def validate_options(name: str, options: Mapping[str, Any]) -> BaseModel:
    """`provider_options` checked against the provider's model; ProviderOptionsError names each problem."""
    model = spec(name).options_model()
    try:
        return model.model_validate(dict(options))
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'provider_options'}: {item['msg']}"
            for item in error.errors()
        )
        raise ProviderOptionsError(f"provider_options for {name}: {problems}") from None


def check_channel(name: str, channel: str) -> None:
    """UnsupportedChannel when provider `name` does not work on `channel` (UnknownProvider for an unknown name)."""
    channels = spec(name).channels
    if channel not in channels:
        works_on = " and ".join(sorted(channels))
        raise UnsupportedChannel(f"provider {name!r} works on {works_on} campaigns only, not {channel}")
