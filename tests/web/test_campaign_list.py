"""The campaign list `/`: the business's campaigns with their numbers; filters; archived only when asked."""

from __future__ import annotations

import re

from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.web.assets import PLOTLY_URL

from .conftest import Console


def _names(html: str) -> list[str]:
    return re.findall(r'<td data-label="Name"><a href="/campaigns/\d+">([^<]*)</a>', html)


def test_the_list_shows_each_campaign_with_its_numbers_and_a_link(console: Console) -> None:
    phone = console.campaign(console.acme, "Cobranza <enero>", contacts=3)
    chat = console.campaign(console.acme, "Recordatorio", channel="whatsapp")
    console.campaign(console.globex, "Globex secret")
    client = console.sign_in(console.acme)
    response = client.get("/")
    assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"
    page = response.text
    assert _names(page) == ["Recordatorio", "Cobranza &lt;enero&gt;"]  # newest first, escaped
    assert f'href="/campaigns/{phone}"' in page and f'href="/campaigns/{chat}"' in page
    assert "Globex secret" not in page
    assert "2 campaigns" in page
    row = page.split(f'href="/campaigns/{phone}"')[1].split("</tr>")[0]
    assert 'class="badge badge-ready">ready<' in row
    assert '<td data-label="Contacts" class="num">3</td>' in row
    assert "0 / 3" in row  # progress: final / total
    assert "Phone calls" in row


def test_filters_by_status_and_channel_and_archived_only_when_asked(console: Console) -> None:
    console.campaign(console.acme, "Pending phone")
    ready = console.campaign(console.acme, "Ready phone", contacts=1)
    console.campaign(console.acme, "Pending chat", channel="whatsapp")
    archived = console.campaign(console.acme, "Old one")
    engine.act(console.store, archived, "archive", RealClock().now())
    client = console.sign_in(console.acme)
    assert _names(client.get("/").text) == ["Pending chat", "Ready phone", "Pending phone"]
    assert _names(client.get("/?status=ready").text) == ["Ready phone"]
    assert _names(client.get("/campaigns?channel=whatsapp").text) == ["Pending chat"]
    assert _names(client.get("/?channel=phone_call&status=pending").text) == ["Pending phone"]
    with_archived = client.get("/?archived=1").text
    assert _names(with_archived)[0] == "Old one"
    assert "badge-archived" in with_archived
    assert ready  # (its row is checked in the test above)
    # Unknown filter values are ignored rather than failing.
    assert len(_names(client.get("/?status=bogus&channel=fax").text)) == 3


def test_pages_of_the_list(console: Console) -> None:
    for index in range(30):
        console.campaign(console.acme, f"C{index:02d}")
    client = console.sign_in(console.acme)
    first = client.get("/").text
    assert len(_names(first)) == 25 and _names(first)[0] == "C29"
    older = re.search(r'href="(/\?cursor=[^"]+)">Older', first)
    assert older is not None
    second = client.get(older.group(1)).text
    assert _names(second) == [f"C{i:02d}" for i in range(4, -1, -1)]
    assert "Newer" in second and "Older" not in second
    assert client.get("/?cursor=garbage").status_code == 200  # a hand-edited cursor shows the first page


def test_static_files_and_plotly_are_served_with_cache_headers(console: Console) -> None:
    client = console.client()
    css = client.get("/static/herald.css")
    assert css.status_code == 200 and "text/css" in css.headers["content-type"]
    plotly = client.get(PLOTLY_URL)
    assert plotly.status_code == 200
    assert "immutable" in plotly.headers["cache-control"] and "max-age=31536000" in plotly.headers["cache-control"]
    assert len(plotly.content) > 1_000_000


def test_a_browser_gets_a_page_for_a_path_that_does_not_exist_and_api_clients_keep_json(console: Console) -> None:
    client = console.sign_in(console.acme)
    page = client.get("/campaigns/not-a-number", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "There is no such page." in page.text
    assert client.get("/campaigns/not-a-number").headers["content-type"] == "application/json"
    api = client.get("/api/v1.0/nothing-here", headers={"Accept": "text/html"})
    assert api.status_code == 404 and api.headers["content-type"] == "application/json"
