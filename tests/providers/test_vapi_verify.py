"""Vapi server message authentication: `X-Vapi-Secret`, a bearer credential, or an HMAC credential's signature."""

from __future__ import annotations

import pytest

from herald.providers.vapi import VapiInbound, sign

INBOUND = VapiInbound()
SECRET = "srv-secret-0123456789"
OPTIONS = {"server_secret": SECRET}
BODY = b'{"message": {"type": "status-update"}}'


def verify(headers: dict[str, str], options: dict[str, object] = OPTIONS, body: bytes = BODY) -> bool:
    return INBOUND.verify(body, headers, "http://127.0.0.1/webhooks/vapi", options)


def test_failures_are_401() -> None:
    assert INBOUND.signature_status == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Vapi-Secret": SECRET},
        {"x-vapi-secret": f" {SECRET} "},
        {"Authorization": f"Bearer {SECRET}"},
        {"authorization": f"bearer {SECRET}"},
        {"X-Vapi-Signature": sign(SECRET, BODY)},
        {"x-signature": "sha256=" + sign(SECRET, BODY)},
        {"X-Vapi-Signature": sign(SECRET, BODY, "1767625200"), "X-Timestamp": "1767625200"},
    ],
)
def test_each_credential_form_verifies(headers: dict[str, str]) -> None:
    assert verify(headers)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Vapi-Secret": ""},
        {"X-Vapi-Secret": SECRET + "x"},
        {"X-Vapi-Secret": SECRET[:-1]},
        {"Authorization": SECRET},
        {"Authorization": f"Basic {SECRET}"},
        {"Authorization": "Bearer "},
        {"X-Vapi-Signature": sign("other", BODY)},
        {"X-Vapi-Signature": sign(SECRET, BODY + b" ")},
        {"X-Vapi-Signature": sign(SECRET, BODY, "1")},  # signed with a timestamp that is not sent
        {"X-Vapi-Signature": sign(SECRET, BODY), "X-Timestamp": "1"},  # a timestamp that was not signed
        {"X-Vapi-Signature": "zz\u00e9"},
        {"X-Vapi-Secret": "\u00e9" + SECRET},
    ],
)
def test_wrong_or_missing_credentials(headers: dict[str, str]) -> None:
    assert not verify(headers)


@pytest.mark.parametrize("options", [{}, {"server_secret": ""}, {"server_secret": None}])
def test_no_secret_verifies_nothing(options: dict[str, object]) -> None:
    assert not verify({"X-Vapi-Secret": ""}, options)
    assert not verify({"Authorization": "Bearer "}, options)


def test_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAPI_SERVER_SECRET", SECRET)
    assert verify({"X-Vapi-Secret": SECRET}, {"server_secret": "env:VAPI_SERVER_SECRET"})
    monkeypatch.delenv("VAPI_SERVER_SECRET")
    # The webhook route turns this into a 401 naming the variable, never a value.
    with pytest.raises(KeyError, match="VAPI_SERVER_SECRET"):
        verify({"X-Vapi-Secret": SECRET}, {"server_secret": "env:VAPI_SERVER_SECRET"})
