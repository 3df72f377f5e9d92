"""Contacts upload: preview with the detected encoding and delimiter, the import report that accounts for every row,
the rejects CSV (formula-guarded), and the upload's scoping to its user."""

from __future__ import annotations

import csv
import io
import re
from html import unescape
from typing import Any

from fastapi.testclient import TestClient

from herald.engine import campaigns as engine
from herald.engine.clock import RealClock

from .conftest import Console, csrf_of

# 9 data rows: 4 good, an invalid number, a missing contact, a duplicate of line 2, two blank lines; and a formula.
BAD_ROWS = (
    "contact,name,context,plan\r\n"
    "5512345678,Ana,debt 100,gold\r\n"
    "+52 55 1234 5679,Beto,debt 200,silver\r\n"
    "\r\n"
    '12,Carla,=HYPERLINK("http://evil"),gold\r\n'
    ",Dora,no number,gold\r\n"
    "55 1234 5678,Ana again,dup,gold\r\n"
    "\r\n"
    "5512345680,Eva,debt 300,\r\n"
    "5512345681,Félix,debt 400,gold\r\n"
).encode()


def _upload(client: TestClient, campaign_id: int, data: bytes, name: str = "contacts.csv") -> Any:
    token = csrf_of(client.get(f"/campaigns/{campaign_id}/contacts/upload").text)
    return client.post(
        f"/campaigns/{campaign_id}/contacts/upload",
        data={"csrf_token": token},
        files={"file": (name, data, "text/csv")},
    )


def _import(client: TestClient, preview_url: str, **extra: str) -> Any:
    token = csrf_of(client.get(preview_url).text)
    return client.post(preview_url, data={"csrf_token": token, **extra})


def _count(html: str, name: str) -> int:
    found = re.search(rf'<dd id="count-{name}">(\d+)</dd>', html)
    assert found is not None, name
    return int(found.group(1))


def test_preview_then_import_report_accounts_for_every_row(console: Console) -> None:
    campaign_id = console.campaign(console.acme, "Upload target")
    client = console.sign_in(console.acme)
    staged = _upload(client, campaign_id, BAD_ROWS)
    assert staged.status_code == 303
    preview_url = staged.headers["location"]
    page = client.get(preview_url).text
    assert 'id="encoding">UTF-8<' in page and 'id="delimiter">comma<' in page
    assert '<th scope="col">plan</th>' in page and "<td>Ana</td>" in page
    assert "Import contacts" in page
    with console.store.read() as tx:
        assert tx.status_counts(campaign_id) == {}  # a preview imports nothing

    imported = _import(client, preview_url)
    assert imported.status_code == 303 and imported.headers["location"] == preview_url
    report = client.get(preview_url).text
    counts = {name: _count(report, name) for name in ("rows", "added", "updated", "rejected", "blank")}
    assert counts == {"rows": 9, "added": 4, "updated": 0, "rejected": 3, "blank": 2}
    assert "every row is accounted for" in report
    assert "Added 4 + updated 0 + rejected 3 + blank 2 = 9 = the 9 rows in the file" in " ".join(
        unescape(report).split()
    )
    rejects = re.findall(r'<tr><td class="num">(\d+)</td><td><code>([A-Z_]+)</code>', report)
    assert rejects == [("5", "INVALID_PHONE_NUMBER"), ("6", "MISSING_CONTACT"), ("7", "DUPLICATE")]
    with console.store.read() as tx:
        assert sum(tx.status_counts(campaign_id).values()) == 4
        assert tx.campaign(campaign_id).status.value == "ready"

    link = re.search(r'href="([^"]+rejects\.csv)" download aria-label="Download CSV: rejected rows"', report)
    assert link is not None
    download = client.get(link.group(1))
    assert download.status_code == 200 and download.headers["content-type"].startswith("text/csv")
    assert "attachment" in download.headers["content-disposition"]
    table = list(csv.reader(io.StringIO(download.content.decode())))
    assert table[0] == ["line", "reason", "detail", "contact", "name", "context", "plan"]
    assert [row[:2] for row in table[1:]] == [
        ["5", "INVALID_PHONE_NUMBER"],
        ["6", "MISSING_CONTACT"],
        ["7", "DUPLICATE"],
    ]
    assert table[1][5] == '\'=HYPERLINK("http://evil")'  # formula-guarded

    # Posting the import again (a second click, a reload of the POST) imports nothing more.
    again = _import(client, preview_url)
    assert again.status_code == 303
    with console.store.read() as tx:
        assert sum(tx.status_counts(campaign_id).values()) == 4


def test_latin1_semicolon_file_and_update_of_known_numbers(console: Console) -> None:
    campaign_id = console.campaign(console.acme, "Latin")
    client = console.sign_in(console.acme)
    first = "contact;name;context\r\n5512345678;José;uno\r\n".encode("cp1252")
    _import(client, _upload(client, campaign_id, first).headers["location"])
    second = "contact;name;context\r\n5512345678;José Pérez;dos\r\n5512345699;Íñigo;tres\r\n".encode("cp1252")
    preview_url = _upload(client, campaign_id, second).headers["location"]
    page = client.get(preview_url).text
    assert "Windows-1252" in page and 'id="delimiter">semicolon<' in page and "José Pérez" in page
    _import(client, preview_url, if_duplicate="update")
    report = client.get(preview_url).text
    assert (_count(report, "added"), _count(report, "updated"), _count(report, "rejected")) == (1, 1, 0)
    assert "No row was rejected." in report


def test_unreadable_files_are_refused_on_the_form(console: Console) -> None:
    campaign_id = console.campaign(console.acme, "Target")
    client = console.sign_in(console.acme)
    response = _upload(client, campaign_id, b"PK\x03\x04 not a csv", "book.xlsx")
    assert response.status_code == 400
    assert "ZIP archive" in unescape(response.text) and "nothing was imported" in response.text
    missing = _upload(client, campaign_id, b"name,context\r\nAna,x\r\n")  # readable: the import reports it
    failed = _import(client, missing.headers["location"])
    assert failed.status_code == 400 and "nothing was imported" in failed.text
    finished = console.campaign(console.acme, "Done")
    engine.add_contacts(console.store, finished, [], RealClock().now())
    with console.store.tx() as tx:
        tx.connection.exec_driver_sql(f"UPDATE campaigns SET status = 'finished' WHERE id = {finished}")
    refused = _import(client, _upload(client, finished, BAD_ROWS).headers["location"])
    assert refused.status_code == 400 and "read-only" in refused.text


def test_uploads_belong_to_their_user_and_campaign(console: Console) -> None:
    ours = console.campaign(console.acme, "Ours")
    other = console.campaign(console.acme, "Other of ours")
    theirs = console.campaign(console.globex, "Theirs")
    client = console.sign_in(console.acme)
    preview_url = _upload(client, ours, BAD_ROWS).headers["location"]
    upload_id = preview_url.rsplit("/", 1)[1]
    _import(client, preview_url)
    intruder = console.sign_in(console.globex)
    assert intruder.get(preview_url).status_code == 404
    assert intruder.get(f"{preview_url}/rejects.csv").status_code == 404
    assert intruder.get(f"/campaigns/{ours}/contacts/upload").status_code == 404
    assert client.get(f"/campaigns/{other}/contacts/uploads/{upload_id}").status_code == 404
    assert client.get(f"/campaigns/{theirs}/contacts/upload").status_code == 404
    token = csrf_of(intruder.get("/").text)
    posted = intruder.post(
        f"/campaigns/{ours}/contacts/upload", data={"csrf_token": token}, files={"file": ("c.csv", BAD_ROWS)}
    )
    assert posted.status_code == 404


def test_upload_and_import_need_the_csrf_token(console: Console) -> None:
    campaign_id = console.campaign(console.acme, "Target")
    client = console.sign_in(console.acme)
    response = client.post(f"/campaigns/{campaign_id}/contacts/upload", files={"file": ("c.csv", BAD_ROWS)})
    assert response.status_code == 403
    preview_url = _upload(client, campaign_id, BAD_ROWS).headers["location"]
    assert client.post(preview_url, data={"csrf_token": "nope"}).status_code == 403
    with console.store.read() as tx:
        assert tx.status_counts(campaign_id) == {}
