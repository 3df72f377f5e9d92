"""Placing calls with Twilio's Calls API, against the fake Twilio, with the official `twilio` package as an oracle."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from twilio.rest import Client

from herald.providers.base import StartError
from herald.providers.twilio import TwilioOutbound, call_form, caller_id, classify
from herald.testing.fake_twilio import FakeTwilio

from .twilio_support import ACCOUNT, NOW, TOKEN, options, request


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    # Callbacks go nowhere here: Herald's public URL is a closed loopback port, which the fake keeps retrying.
    monkeypatch.setenv("HERALD_PUBLIC_URL", "http://127.0.0.1:9/")
    with FakeTwilio(ACCOUNT, TOKEN, seed=1) as running:
        yield running


def test_a_call_is_created_with_machine_detection_and_status_callbacks(
    fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TW_TOKEN", TOKEN)
    with TwilioOutbound(options(fake.url, auth_token="env:TW_TOKEN", record=True)) as outbound:
        (result,) = outbound.start_calls([request("cll_abc")], NOW)
    assert result.ok and result.external_id == "CA" + "0" * 31 + "1"
    (form,) = fake.stats()["requests"]
    fields = dict(form)
    assert fields["To"] == "+525500000001" and fields["From"] == "+15005550006"
    assert fields["MachineDetection"] == "Enable" and fields["Record"] == "true"
    assert fields["StatusCallback"] == "http://127.0.0.1:9/webhooks/twilio?call_id=cll_abc&record=1"
    assert [value for name, value in form if name == "StatusCallbackEvent"] == [
        "initiated",
        "ringing",
        "answered",
        "completed",
    ]
    assert dict(parse_qsl(urlsplit(fields["Url"]).query)) == {"call_id": "cll_abc"}
    # A recording is announced in its own callback, to the same address.
    assert fields["RecordingStatusCallback"] == fields["StatusCallback"]
    assert fields["RecordingStatusCallbackEvent"] == "completed"


def test_inline_twiml_gets_the_contact_escaped_and_a_pool_number() -> None:
    pool = ["+15005550001", "+15005550002", "+15005550003"]
    opts = options("https://api.twilio.com", url=None, twiml="<Response><Say>{first_message}, {name}</Say></Response>",
                   from_number=None, from_numbers=pool)  # fmt: skip
    fields = dict(call_form(opts, request(name='Ana <"&">')))
    assert fields["Twiml"] == "<Response><Say>Hola {name}, Ana &lt;&quot;&amp;&quot;&gt;</Say></Response>"
    assert fields["From"] in pool
    # The same contact always sees the same caller id.
    assert {caller_id(opts, "+525500000001") for _ in range(5)} == {fields["From"]}
    assert len({caller_id(opts, f"+5255000000{index:02d}") for index in range(40)}) == 3


def test_twilio_errors_are_classified_and_never_carry_the_token(fake: FakeTwilio) -> None:
    with TwilioOutbound(options(fake.url)) as outbound:
        (bad,) = outbound.start_calls([request(to="12345")], NOW)
    assert (bad.error, bad.error_code) == (StartError.REJECTED, "21211")
    assert "Invalid 'To' Phone Number" in bad.error_msg
    with TwilioOutbound(options(fake.url, auth_token="wrong-token-0123456789")) as outbound:
        (denied,) = outbound.start_calls([request()], NOW)
    # Wrong credentials would fail every contact: they wait for the configuration to be fixed instead.
    assert (denied.error, denied.error_code) == (StartError.RETRYABLE, "20003")
    leaky = httpx.Response(400, json={"code": 21210, "message": f"token {TOKEN} refused", "status": 400})
    assert TOKEN not in classify(leaky, TOKEN, "cll_1").error_msg
    for status in (429, 500, 503):
        result = classify(httpx.Response(status, json={"code": 20429, "message": "slow down"}), TOKEN, "cll_1")
        assert result.error is StartError.RETRYABLE
    # Twilio took the call but its answer is unreadable: placed, under a stand-in id until its callbacks come.
    assert classify(httpx.Response(201, json={"status": "queued"}), TOKEN, "cll_1").external_id == "pending:cll_1"


def test_injected_server_errors_and_unreachable_hosts_are_retryable(fake: FakeTwilio) -> None:
    fake.settings["error_rate_500"] = 1.0
    with TwilioOutbound(options(fake.url)) as outbound:
        results = outbound.start_calls([request("cll_1"), request("cll_2")], NOW)
    assert [(r.error, r.error_code) for r in results] == [(StartError.RETRYABLE, "20500")] * 2
    with TwilioOutbound(options("http://127.0.0.1:9", timeout_seconds=2)) as outbound:
        (down,) = outbound.start_calls([request()], NOW)
    assert down.error is StartError.RETRYABLE and down.error_code == "connect_error"


def test_a_missing_token_variable_waits_and_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TW_MISSING", raising=False)
    with TwilioOutbound(options("http://127.0.0.1:9", auth_token="env:TW_MISSING")) as outbound:
        (result,) = outbound.start_calls([request()], NOW)
    assert result.error is StartError.RETRYABLE and "TW_MISSING" in result.error_msg


def test_the_official_client_creates_a_call_on_the_fake(fake: FakeTwilio) -> None:
    client = Client(ACCOUNT, TOKEN)
    client.api.base_url = fake.url
    call = client.calls.create(
        to="+525500000002",
        from_="+15005550006",
        url="https://agent.example/twiml",
        machine_detection="Enable",
        status_callback="http://127.0.0.1:9/webhooks/twilio?call_id=cll_sdk",
        status_callback_event=["initiated", "ringing", "answered", "completed"],
    )
    assert call.sid.startswith("CA") and len(call.sid) == 34
    assert (call.status, call.to, call._from, call.account_sid) == ("queued", "+525500000002", "+15005550006", ACCOUNT)
    assert call.date_created is not None and call.direction == "outbound-api"
    # What the official client sends is what Herald sends.
    (official,) = fake.stats()["requests"]
    ours = call_form(options(fake.url), request("cll_sdk", to="+525500000002"))
    assert {name for name, _ in official} <= {name for name, _ in ours} | {"StatusCallback"}


def test_a_lost_answer_counts_as_placed_under_a_stand_in_id(fake: FakeTwilio) -> None:
    fake.settings["response_delay"] = 1.0
    with TwilioOutbound(options(fake.url, timeout_seconds=0.2)) as outbound:
        (result,) = outbound.start_calls([request("cll_lost")], NOW)
    # The call exists at Twilio: Herald must not place it again, and waits for its callbacks instead.
    assert result.ok and result.external_id == "pending:cll_lost"
    assert fake.stats()["placements"] == 1
