"""The campaign page `/campaigns/{id}` and its tabs over HTTP: Overview with lifecycle buttons and live counters,
Contacts, Calls or Messages, Analytics with Download CSV, Forecast; another business's campaign is a 404 everywhere.

Each test runs on a SQLite file and on PostgreSQL (`database_url`), as the REST API's tests do.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import update

from herald.api.app import create_app
from herald.demo import simulate_campaign
from herald.domain.statuses import Channel
from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.exports.formats import available, export
from herald.exports.kinds import ExportKind
from herald.store import schema as t
from herald.store.queries import Store
from herald.web import computed

from .conftest import Console, _member, csrf_of


@pytest.fixture
def site(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Console]:
    """The console on SQLite and on PostgreSQL, businesses `acme` and `globex`; figures computed while the page
    waits (tests read them at once instead of reloading)."""
    monkeypatch.setattr(computed, "WAIT_SECONDS", None)
    store = Store.open(database_url)
    app = create_app(store, rate_limit=None)
    yield Console(store, app, _member(store, "acme"), _member(store, "globex"))
    computed.forget()
    store.close()


def _simulated(site: Console, channel: Channel, contacts: int = 24) -> int:
    """A campaign run to its end by the simulator (calls, recordings, messages), moved to acme."""
    campaign_id, *_ = simulate_campaign(site.store, channel, contacts, seed=3)
    with site.store.tx() as tx:
        tx.connection.execute(
            update(t.campaigns).where(t.campaigns.c.id == campaign_id).values(business_id=site.acme.business_id)
        )
    return campaign_id


def _buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit" name="action" value="[a-z]+"[^>]*>([A-Za-z]+)</button>', html)


def _tabs(html: str) -> list[str]:
    strip = html.split('<nav class="tabs" aria-label="Campaign">')[1].split("</nav>")[0]
    return re.findall(r">([A-Za-z]+)</a>", strip)


def test_every_tab_renders_with_its_accessible_name(site: Console) -> None:
    phone = site.campaign(site.acme, "Cobranza", contacts=3)
    chat = site.campaign(site.acme, "Recordatorio", channel="whatsapp", contacts=2)
    client = site.sign_in(site.acme)
    for path in ("", "/contacts", "/calls", "/analytics", "/forecast", "/live"):
        response = client.get(f"/campaigns/{phone}{path}")
        assert response.status_code == 200, (path, response.text)
    overview = client.get(f"/campaigns/{phone}").text
    assert _tabs(overview) == ["Overview", "Contacts", "Calls", "Analytics", "Forecast"]
    assert 'aria-current="page" class="current">Overview<' in overview
    assert 'aria-current="page" class="current">Contacts<' in client.get(f"/campaigns/{phone}/contacts").text
    assert _tabs(client.get(f"/campaigns/{chat}").text) == ["Overview", "Contacts", "Messages", "Analytics", "Forecast"]
    assert client.get(f"/campaigns/{chat}/messages").status_code == 200
    # A phone campaign has no Messages tab and a WhatsApp one no Calls tab.
    assert client.get(f"/campaigns/{phone}/messages").status_code == 404
    assert client.get(f"/campaigns/{chat}/calls").status_code == 404
    # Signed out: every tab asks to sign in first.
    redirect = site.client().get(f"/campaigns/{phone}/analytics")
    assert redirect.status_code == 303 and redirect.headers["location"].startswith("/login?next=")


def test_lifecycle_buttons_are_those_valid_now_and_act(site: Console) -> None:
    campaign = site.campaign(site.acme, "Cobranza", contacts=2)
    client = site.sign_in(site.acme)
    page = client.get(f"/campaigns/{campaign}").text
    assert _buttons(page) == ["Activate", "Archive"]
    token = csrf_of(page)
    done = client.post(f"/campaigns/{campaign}/lifecycle", data={"csrf_token": token, "action": "activate"})
    assert done.status_code == 303 and done.headers["location"] == f"/campaigns/{campaign}?done=activate"
    page = client.get(done.headers["location"]).text
    assert "Campaign activated." in page and 'badge-active">active<' in page
    assert _buttons(page) == ["Pause", "Archive"]
    client.post(f"/campaigns/{campaign}/lifecycle", data={"csrf_token": token, "action": "pause"})
    assert _buttons(client.get(f"/campaigns/{campaign}").text) == ["Resume", "Archive"]
    client.post(f"/campaigns/{campaign}/lifecycle", data={"csrf_token": token, "action": "archive"})
    page = client.get(f"/campaigns/{campaign}").text
    assert _buttons(page) == ["Resume"] and "badge-archived" in page
    with site.store.read() as tx:
        stored = tx.campaign(campaign)
    assert stored.status == "inactive" and stored.archived


def test_a_change_from_another_process_is_a_clear_409_not_a_server_error(site: Console) -> None:
    campaign = site.campaign(site.acme, "Cobranza", contacts=2)
    client = site.sign_in(site.acme)
    page = client.get(f"/campaigns/{campaign}").text
    assert _buttons(page) == ["Activate", "Archive"]
    # Meanwhile another process (the CLI, the API) activates it: the page's Activate button is now out of date.
    engine.act(site.store, campaign, "activate", RealClock().now())
    clash = client.post(f"/campaigns/{campaign}/lifecycle", data={"csrf_token": csrf_of(page), "action": "activate"})
    assert clash.status_code == 409
    assert 'role="alert"' in clash.text and "is active now" in clash.text and "cannot be activated" in clash.text
    assert _buttons(clash.text) == ["Pause", "Archive"]  # what can be done now
    unknown = client.post(f"/campaigns/{campaign}/lifecycle", data={"csrf_token": csrf_of(page), "action": "explode"})
    assert unknown.status_code == 400
    forged = client.post(f"/campaigns/{campaign}/lifecycle", data={"csrf_token": "nope", "action": "pause"})
    assert forged.status_code == 403
    with site.store.read() as tx:
        assert tx.campaign(campaign).status == "active"


def test_live_counters_follow_the_campaign(site: Console) -> None:
    campaign = site.campaign(site.acme, "Cobranza", contacts=2)
    client = site.sign_in(site.acme)
    before = client.get(f"/campaigns/{campaign}/live").text
    assert '<dd data-counter="contacts">2</dd>' in before and 'data-running="false"' in before
    assert "<html" not in before  # a fragment, not a page
    engine.add_contacts(
        site.store, campaign, [engine.NewContact(contact="+525599990000", name="Z", context="")], RealClock().now()
    )
    engine.act(site.store, campaign, "activate", RealClock().now())
    after = client.get(f"/campaigns/{campaign}/live").text
    assert '<dd data-counter="contacts">3</dd>' in after and 'data-running="true"' in after
    assert 'data-counter="cycle">1 of' in after and "Next calling window" in after
    overview = client.get(f"/campaigns/{campaign}").text
    assert f'data-live-url="/campaigns/{campaign}/live"' in overview and "campaign.js" in overview


def test_contacts_pages_filter_and_search(site: Console) -> None:
    campaign = site.campaign(site.acme, "Cobranza", contacts=120)
    client = site.sign_in(site.acme)
    names = re.compile(r'<td data-label="Name">(P\d+)</td>')
    first = client.get(f"/campaigns/{campaign}/contacts").text
    assert "120 contacts" in first and names.findall(first)[:2] == ["P0", "P1"] and len(names.findall(first)) == 50
    assert "Previous page" not in first and f'href="/campaigns/{campaign}/contacts/upload">Upload contacts' in first
    second_url = re.search(r'href="([^"]+)">Next page', first)
    assert second_url is not None
    second = client.get(second_url.group(1).replace("&amp;", "&")).text
    assert names.findall(second)[0] == "P50"
    third_url = re.search(r'href="([^"]+)">Next page', second)
    assert third_url is not None
    third = client.get(third_url.group(1).replace("&amp;", "&")).text
    assert names.findall(third) == [f"P{i}" for i in range(100, 120)] and "Next page" not in third
    back = re.search(r'href="([^"]+)">Previous page', third)
    assert back is not None
    assert names.findall(client.get(back.group(1).replace("&amp;", "&")).text)[0] == "P50"
    # Search by name (any case) and by a number's digits; filter by status.
    assert names.findall(client.get(f"/campaigns/{campaign}/contacts", params={"q": "p11"}).text) == [
        "P11",
        *[f"P{i}" for i in range(110, 120)],
    ]
    assert names.findall(client.get(f"/campaigns/{campaign}/contacts", params={"q": "5255 0000 0007"}).text) == ["P7"]
    assert names.findall(client.get(f"/campaigns/{campaign}/contacts", params={"q": "100%"}).text) == []
    assert len(names.findall(client.get(f"/campaigns/{campaign}/contacts?status=queue").text)) == 50
    assert names.findall(client.get(f"/campaigns/{campaign}/contacts?status=converted").text) == []


def test_calls_tab_with_recordings_and_the_messages_tab(site: Console) -> None:
    phone = _simulated(site, Channel.PHONE_CALL)
    chat = _simulated(site, Channel.WHATSAPP)
    client = site.sign_in(site.acme)
    calls = client.get(f"/campaigns/{phone}/calls").text
    assert re.search(r"\d+ calls", calls) and '<td data-label="Answered by">' in calls
    assert '<th scope="col">Error code</th>' in calls
    recording = re.search(r'href="(/campaigns/\d+/calls/[^/"]+/recording)"', calls)
    assert recording is not None
    audio = client.get(recording.group(1))
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/wav"
    assert client.get(f"/campaigns/{phone}/calls/cll_nope/recording").status_code == 404
    # Another campaign of the same business: its URLs serve only its own calls' recordings.
    other = site.campaign(site.acme, "Otra")
    assert client.get(recording.group(1).replace(f"/campaigns/{phone}/", f"/campaigns/{other}/")).status_code == 404
    ended = client.get(f"/campaigns/{phone}/calls?status=ended").text
    assert "with status ended" in ended
    messages = client.get(f"/campaigns/{chat}/messages").text
    assert re.search(r"\d+ messages", messages) and '<td data-label="Delivered">' in messages


def test_analytics_shows_the_report_and_each_download_is_the_export_file(site: Console, tmp_path: Path) -> None:
    phone = _simulated(site, Channel.PHONE_CALL)
    chat = _simulated(site, Channel.WHATSAPP)
    client = site.sign_in(site.acme)
    for campaign in (phone, chat):
        page = client.get(f"/campaigns/{campaign}/analytics").text
        with site.store.read() as tx:
            kinds = [kind.value for kind in available(tx.campaign(campaign))]
        labels = re.findall(r'aria-label="Download CSV: ([a-z]+)">Download CSV</a>', page)
        assert labels == kinds
        assert 'data-section="status"' in page and 'data-section="reach"' in page and 'data-section="activity"' in page
        assert "/static/vendor/plotly-" in page
        for kind in kinds:
            expected = tmp_path / f"{campaign}-{kind}.csv"
            export(site.store, campaign, ExportKind(kind), expected)  # what `herald export ID KIND` writes
            download = client.get(f"/campaigns/{campaign}/exports/{kind}.csv")
            assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
            assert "attachment" in download.headers["content-disposition"]
            assert download.content == expected.read_bytes(), kind
    phone_page = client.get(f"/campaigns/{phone}/analytics").text
    assert 'data-section="cost"' in phone_page and 'data-section="anomalies"' in phone_page
    chat_page = client.get(f"/campaigns/{chat}/analytics").text
    assert 'data-section="funnel"' in chat_page and 'data-section="clicks"' in chat_page
    assert client.get(f"/campaigns/{phone}/exports/sendout.csv").status_code == 404
    assert client.get(f"/campaigns/{phone}/exports/nope.csv").status_code == 404


def test_forecast_before_activation(site: Console) -> None:
    campaign = site.campaign(site.acme, "Cobranza", contacts=20)
    client = site.sign_in(site.acme)
    page = client.get(f"/campaigns/{campaign}/forecast").text
    for figure in ("reach", "conversions", "calls", "billed_minutes", "finish"):
        assert f'data-figure="{figure}"' in page, figure
    assert "as if activated then" in page and "Expected reach" in page and "Finish date" in page
    chat = site.campaign(site.acme, "Recordatorio", channel="whatsapp", contacts=5)
    assert 'data-figure="messages"' in client.get(f"/campaigns/{chat}/forecast").text


def test_another_business_gets_404_on_every_tab_and_endpoint(site: Console) -> None:
    phone = _simulated(site, Channel.PHONE_CALL, contacts=6)
    chat = site.campaign(site.acme, "Recordatorio", channel="whatsapp", contacts=1)
    ours = site.sign_in(site.acme)
    recording = re.search(r'href="/campaigns/\d+/calls/([^/"]+)/recording"', ours.get(f"/campaigns/{phone}/calls").text)
    assert recording is not None
    theirs = site.sign_in(site.globex)
    token = csrf_of(theirs.get("/").text)
    paths = [
        f"/campaigns/{phone}",
        f"/campaigns/{phone}/live",
        f"/campaigns/{phone}/contacts",
        f"/campaigns/{phone}/calls",
        f"/campaigns/{phone}/analytics",
        f"/campaigns/{phone}/forecast",
        f"/campaigns/{phone}/exports/contacts.csv",
        f"/campaigns/{phone}/exports/calls.csv",
        f"/campaigns/{phone}/calls/{recording.group(1)}/recording",
        f"/campaigns/{chat}/messages",
        "/campaigns/999999/analytics",
        "/campaigns/99999999999/contacts",
    ]
    for path in paths:
        response = theirs.get(path)
        assert response.status_code == 404, path
        assert "There is no such campaign in your business." in response.text, path
    refused = theirs.post(f"/campaigns/{chat}/lifecycle", data={"csrf_token": token, "action": "activate"})
    assert refused.status_code == 404
    with site.store.read() as tx:
        assert tx.campaign(chat).status == "ready"
