"""End to end in headless Chromium against a real `herald serve`: sign in, see the list, create a campaign through
the form, upload a CSV with bad rows and read the report, download the rejects; another business sees none of it.
Screenshots of each page at 1280 px and 390 px are saved in the test's tmp folder."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

from .browser import LiveConsole, shoot, sign_in
from .test_contacts_upload import BAD_ROWS


def test_sign_in_create_a_campaign_and_upload_contacts(page: Any, live_console: LiveConsole, tmp_path: Path) -> None:
    console = live_console
    page.goto(console.url + "/campaigns")
    assert page.url.startswith(console.url + "/login")
    shoot(page, console, "sign-in")
    page.get_by_label("E-mail").fill(console.acme)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in").click()
    assert page.get_by_role("alert").inner_text().startswith("Wrong e-mail or password")
    page.get_by_label("Password").fill("correct horse battery")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(console.url + "/campaigns")  # back to the page asked for
    assert page.get_by_role("heading", name="Campaigns").is_visible()
    shoot(page, console, "campaign-list-empty")

    # New campaign, through the form.
    page.get_by_role("link", name="New campaign").first.click()
    page.wait_for_url(console.url + "/campaigns/new")
    page.get_by_label("Name", exact=True).fill("Cobranza diciembre")
    page.get_by_label("Retries", exact=True).fill("7")
    page.get_by_label("Agent tags").fill("promise, callback")
    page.get_by_label("Converted when this tag is set").fill("promise")
    page.get_by_label("Limit calling hours").check()
    page.get_by_label("Saturday open", exact=True).check()
    page.get_by_label("Saturday start time", exact=True).fill("10:00")
    page.get_by_label("Saturday stop time", exact=True).fill("14:00")
    page.get_by_role("button", name="Create campaign").click()
    # Retries above 5: refused by the domain's rule, shown next to the field, the rest kept.
    error = page.locator("#e-retries")
    assert "less than or equal to 5" in error.inner_text()
    assert page.get_by_label("Name", exact=True).input_value() == "Cobranza diciembre"
    assert page.get_by_label("Retries", exact=True).get_attribute("aria-invalid") == "true"
    shoot(page, console, "new-campaign-errors")
    page.get_by_label("Retries", exact=True).fill("2")
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r".*/campaigns/\d+/contacts/upload\?created=1$"))
    campaign_id = int(re.findall(r"/campaigns/(\d+)/", page.url)[0])
    assert page.get_by_role("heading", name="Upload contacts").is_visible()
    shoot(page, console, "upload-form")

    # Upload a CSV with bad rows: preview, import, report.
    contacts = tmp_path / "contacts.csv"
    contacts.write_bytes(BAD_ROWS)
    page.get_by_label("Contacts file (CSV)").set_input_files(str(contacts))
    page.get_by_role("button", name="Preview").click()
    assert page.locator("#encoding").inner_text() == "UTF-8"
    assert page.locator("#delimiter").inner_text() == "comma"
    assert page.get_by_role("cell", name="Beto").is_visible()
    shoot(page, console, "upload-preview")
    page.get_by_role("button", name="Import contacts").click()
    page.get_by_role("heading", name="Import report").wait_for()
    counts = {name: page.locator(f"#count-{name}").inner_text() for name in ("rows", "added", "rejected", "blank")}
    assert counts == {"rows": "9", "added": "4", "rejected": "3", "blank": "2"}
    assert "every row is accounted for" in page.locator(".equation").inner_text()
    assert page.get_by_role("link", name="Upload contacts").is_visible()
    shoot(page, console, "import-report")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download CSV: rejected rows").click()
    saved = Path(download_info.value.path())
    table = list(csv.reader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [row[:2] for row in table[1:]] == [
        ["5", "INVALID_PHONE_NUMBER"],
        ["6", "MISSING_CONTACT"],
        ["7", "DUPLICATE"],
    ]
    assert table[1][5].startswith("'=")  # formula-guarded

    # The list shows the campaign with its contacts and status.
    page.goto(console.url + "/")
    row = page.get_by_role("row").filter(has_text="Cobranza diciembre")
    assert "ready" in row.inner_text() and "0 / 4" in row.inner_text()
    assert row.get_by_role("link", name="Cobranza diciembre").get_attribute("href") == f"/campaigns/{campaign_id}"
    shoot(page, console, "campaign-list")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(console.url + "/login")

    # Another business's user sees none of it.
    sign_in(page, console, console.globex)
    assert page.get_by_text("Cobranza diciembre").count() == 0
    response = page.goto(f"{console.url}/campaigns/{campaign_id}/contacts/upload")
    assert response is not None and response.status == 404
    shoot(page, console, "other-business-404")
    assert len(console.screenshots) == 2 * 8
    print("screenshots:", *console.screenshots, sep="\n  ")


def test_everything_works_with_javascript_off(page_without_js: Any, live_console: LiveConsole, tmp_path: Path) -> None:
    page, console = page_without_js, live_console
    sign_in(page, console, console.acme)
    page.get_by_label("Status").select_option("pending")
    page.get_by_role("button", name="Filter").click()
    page.wait_for_url(re.compile(r".*/\?status=pending&channel=$"))
    assert page.get_by_label("Status").input_value() == "pending"
    page.get_by_role("link", name="New campaign").first.click()
    page.get_by_label("Name", exact=True).fill("Sin JavaScript")
    page.get_by_label("Channel").select_option("whatsapp")
    page.get_by_label("Template", exact=True).fill("recordatorio_v2")
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r".*/contacts/upload\?created=1$"))
    contacts = tmp_path / "contacts.csv"
    contacts.write_bytes(BAD_ROWS)
    page.get_by_label("Contacts file (CSV)").set_input_files(str(contacts))
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Import contacts").click()
    assert page.locator("#count-added").inner_text() == "4"
    page.goto(console.url + "/?channel=whatsapp")
    assert page.get_by_role("row").filter(has_text="Sin JavaScript").count() == 1
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(console.url + "/login")
