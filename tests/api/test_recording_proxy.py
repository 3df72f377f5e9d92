"""`GET /call/{id}/recording` of a Twilio call: fetched from Twilio with the account's credentials and streamed to
the client, who never sees them; a redirect for providers whose recordings need none."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, update

from herald.store import schema as t
from herald.testing.fake_twilio import RECORDING, FakeTwilio

from .campaign_support import add, add_call, contact_ids, create
from .conftest import BASE, Api

ACCOUNT = "AC" + "0123456789abcdef" * 2
TOKEN = "twilio-auth-token-0123456789abcdef"
SID = "CA" + "1" * 32


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTwilio]:
    monkeypatch.setenv("HERALD_PUBLIC_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("TW_RECORDING_TOKEN", TOKEN)
    with FakeTwilio(ACCOUNT, TOKEN) as running:
        yield running


def twilio_call_with_recording(
    api: Api, fake: FakeTwilio, recording_url: str, token: str = "env:TW_RECORDING_TOKEN"
) -> str:
    campaign_id = create(api, api.acme)["id"]
    add(api, api.acme, campaign_id, ["+525511110000"])
    options = {"account_sid": ACCOUNT, "auth_token": token, "from_number": "+15005550006",
               "url": "https://agent.example/twiml", "api_base_url": fake.url}  # fmt: skip
    with api.store.tx() as tx:
        config = dict(
            tx.connection.execute(select(t.campaigns.c.config).where(t.campaigns.c.id == campaign_id)).scalar_one()
        )
        config.update(provider="twilio", provider_options=options)
        tx.connection.execute(update(t.campaigns).where(t.campaigns.c.id == campaign_id).values(config=config))
    public_id = "cll_twiliocall00000001"
    add_call(api, campaign_id, contact_ids(api, campaign_id)[0], public_id, provider="twilio", provider_call_id=SID)
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    with api.store.tx() as tx:
        tx.connection.execute(
            insert(t.events).values(
                provider="twilio", external_id=SID, kind="ended", occurred_at=now, received_at=now,
                payload={"recording_url": recording_url}, applied_at=now,
            )
        )  # fmt: skip
    return public_id


def test_a_twilio_recording_is_streamed_with_the_accounts_credentials(api: Api, fake: FakeTwilio) -> None:
    # A recording the fake made for a call it placed.
    fake._recordings.add("RE" + "2" * 32)
    url = f"{fake.url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{'RE' + '2' * 32}"
    call_id = twilio_call_with_recording(api, fake, url)
    response = api.client.get(f"{BASE}/call/{call_id}/recording", headers=api.acme.headers, follow_redirects=False)
    assert response.status_code == 200 and response.content == RECORDING
    assert response.headers["content-type"].startswith("audio/")
    assert TOKEN not in response.text and "authorization" not in {name.lower() for name in response.headers}
    assert fake.stats()["recordings_served"] == 1
    # Another business does not get it.
    assert api.client.get(f"{BASE}/call/{call_id}/recording", headers=api.globex.headers).status_code == 404


def test_wrong_credentials_or_a_missing_recording_are_a_502_without_details(api: Api, fake: FakeTwilio) -> None:
    url = f"{fake.url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/{'RE' + '3' * 32}"
    call_id = twilio_call_with_recording(api, fake, url)
    response = api.client.get(f"{BASE}/call/{call_id}/recording", headers=api.acme.headers)
    assert response.status_code == 502 and "404" in response.text and TOKEN not in response.text


def test_a_missing_token_variable_is_a_503_that_names_nothing(
    api: Api, fake: FakeTwilio, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TW_RECORDING_TOKEN")
    call_id = twilio_call_with_recording(api, fake, f"{fake.url}/2010-04-01/Accounts/{ACCOUNT}/Recordings/RE1")
    response = api.client.get(f"{BASE}/call/{call_id}/recording", headers=api.acme.headers)
    assert response.status_code == 503 and "TW_RECORDING_TOKEN" not in response.text


def test_a_recording_on_another_host_gets_no_credentials_only_a_redirect(api: Api, fake: FakeTwilio) -> None:
    call_id = twilio_call_with_recording(api, fake, "https://media.example/RE1.wav")
    response = api.client.get(f"{BASE}/call/{call_id}/recording", headers=api.acme.headers, follow_redirects=False)
    assert response.status_code == 302 and response.headers["location"] == "https://media.example/RE1.wav"
