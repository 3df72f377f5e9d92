"""Shared values for the Twilio provider tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from herald.domain.campaign import parse_campaign
from herald.providers.base import CallRequest
from herald.providers.twilio import TwilioOptions

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-0123456789abcdef"
NOW = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)
CONFIG = parse_campaign({"name": "T", "channel": "phone_call", "agent": {"name": "A"}})


def options(api_base_url: str, **extra: Any) -> TwilioOptions:
    """Valid options for the fake account."""
    values: dict[str, Any] = {
        "account_sid": ACCOUNT,
        "auth_token": TOKEN,
        "from_number": "+15005550006",
        "url": "https://agent.example/twiml",
        "api_base_url": api_base_url,
        **extra,
    }
    return TwilioOptions.model_validate(values)


def request(call_id: str = "cll_0001", to: str = "+525500000001", name: str = "Ana") -> CallRequest:
    """One call to place."""
    return CallRequest(call_id, 1, 1, to, name, "ctx", "Hola {name}", False, CONFIG)
