"""The campaign page end to end in headless Chromium, on the live engine: `herald serve` (the harness's) and
`herald worker` as real processes, the simulator provider on the real clock, scaled down.

Sign in, create a phone campaign through the form, upload its contacts, read the forecast, activate (and pause and
resume) it on the Overview, watch the live counters move to the end without a page reload, archive it with the button
the page's script swapped in, read the forecast again, open Analytics and download each CSV (the bytes of
`herald export` run as a process). A second business's user gets 404s for every URL of that campaign.
Screenshots of each tab at 1280 px and 390 px are saved in the test's tmp folder.

Every wait is one of Playwright's auto-waiting expectations on the page; their timeouts are hang guards, not speed
checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .browser import LiveConsole, shoot, sign_in

expect = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is a dev dependency").expect

#: A hang guard for each wait on the page (milliseconds): the campaign runs in seconds on an idle machine.
GUARD_MS = 180_000
CONTACTS = 12
#: 100 times faster than real calls; no follow-ups, so the campaign ends when each contact has had its call; every
#: conversation tags and extracts, so that the Results export has rows.
PROVIDER_OPTIONS = "time_scale: 0.01\nconversation: {follow_up_rate: 0, tag_rate: 1, field_rate: 1}"
EXPORTS = ["contacts", "calls", "results", "recordings"]

# Records each value the Overview's "Final" counter shows, as the page's script swaps the live part in. The list
# lives in the page's window, so finding it whole at the end also proves that the page was never reloaded.
WATCH_FINAL = """() => {
  window.heraldSeenFinal = [];
  const note = () => {
    const value = document.querySelector('#live [data-counter="final"]').textContent.trim();
    const seen = window.heraldSeenFinal;
    if (seen[seen.length - 1] !== value) seen.push(value);
  };
  note();
  new MutationObserver(note).observe(document.getElementById("live"), {childList: true, subtree: true});
}"""


@pytest.fixture(autouse=True)
def _patient(page: Any) -> Iterator[None]:
    """Every wait of this test (expectations, clicks, navigations) guarded by GUARD_MS instead of Playwright's
    defaults (5 s, 30 s), which a busy machine can exceed without anything being wrong."""
    expect.set_options(timeout=GUARD_MS)
    page.set_default_timeout(GUARD_MS)
    yield
    expect.set_options(timeout=None)  # back to Playwright's default for the other tests


def _create_campaign(page: Any, console: LiveConsole) -> int:
    """A phone campaign on the simulator, through the New campaign form; its id."""
    page.get_by_role("link", name="New campaign").first.click()
    page.wait_for_url(console.url + "/campaigns/new")
    page.get_by_label("Name", exact=True).fill("Recordatorio en vivo")
    page.get_by_label("Channel").select_option("phone_call")
    page.get_by_label("Provider", exact=True).select_option("simulator")
    page.get_by_label("Provider options").fill(PROVIDER_OPTIONS)
    page.get_by_label("Agent tags").fill("promise")
    page.get_by_label("Field 1 name").fill("amount")
    page.get_by_label("Field 1 type").select_option("number")
    page.get_by_label("Converted when this tag is set").fill("promise")
    page.get_by_label("Allow follow-up calls").uncheck()
    page.get_by_label("Retries", exact=True).fill("0")
    page.get_by_label("Failed retry limit").fill("0")
    page.get_by_label("Concurrency limit").fill("1")  # one call at a time: the counters move step by step
    page.get_by_role("button", name="Create campaign").click()
    page.wait_for_url(re.compile(r".*/campaigns/\d+/contacts/upload\?created=1$"))
    return int(re.findall(r"/campaigns/(\d+)/", page.url)[0])


def _upload_contacts(page: Any, tmp_path: Path) -> None:
    rows = ["contact,name,context", *(f"+5255{i:08d},Persona {i},saldo {i}" for i in range(CONTACTS))]
    contacts = tmp_path / "contacts.csv"
    contacts.write_text("\n".join(rows) + "\n", encoding="utf-8")
    page.get_by_label("Contacts file (CSV)").set_input_files(str(contacts))
    page.get_by_role("button", name="Preview").click()
    page.get_by_role("button", name="Import contacts").click()
    expect(page.locator("#count-added")).to_have_text(str(CONTACTS))
    expect(page.locator("#count-rejected")).to_have_text("0")


def _open_tab(page: Any, name: str) -> None:
    tab = page.get_by_role("navigation", name="Campaign").get_by_role("link", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-current", "page")


def test_run_a_campaign_from_the_browser(page: Any, live_console: LiveConsole, tmp_path: Path) -> None:
    console = live_console
    sign_in(page, console, console.acme)
    campaign_id = _create_campaign(page, console)
    base = f"{console.url}/campaigns/{campaign_id}"
    _upload_contacts(page, tmp_path)

    # The forecast before launch: it may say "being computed" first and reload itself until the figures are there.
    page.get_by_role("link", name="Back to the campaign").click()
    page.wait_for_url(base)
    _open_tab(page, "Forecast")
    expect(page.locator('[data-figure="reach"]')).to_have_text(re.compile(r"^\d"))
    for figure in ("conversions", "calls", "billed_minutes"):
        expect(page.locator(f'[data-figure="{figure}"]')).to_have_text(re.compile(r"^\d"))
    expect(page.locator('[data-figure="finish"]')).to_have_text(re.compile(r"^\d{4}-\d{2}-\d{2}"))
    shoot(page, console, "forecast")

    # Activate on the Overview; only then does a worker run (as an operator's would, beside the server).
    _open_tab(page, "Overview")
    live = page.locator("#live")
    expect(live.locator('[data-counter="contacts"]')).to_have_text(str(CONTACTS))
    expect(live.get_by_role("button", name="Pause")).to_have_count(0)
    shoot(page, console, "overview-ready")
    live.get_by_role("button", name="Activate").click()
    page.wait_for_url(base + "?done=activate")
    expect(page.get_by_role("status")).to_have_text("Campaign activated.")
    heading_status = page.locator(".page-head [data-campaign-status]")
    expect(live.locator(".status-line")).to_contain_text("active")
    expect(heading_status).to_have_text("active")
    expect(live.get_by_role("button", name="Activate")).to_have_count(0)
    # Pause and resume before any worker runs (so nothing can finish first): the buttons follow the status.
    live.get_by_role("button", name="Pause").click()
    page.wait_for_url(base + "?done=pause")
    expect(heading_status).to_have_text("inactive")  # SPEC: a paused campaign is inactive
    expect(live.get_by_role("button", name="Pause")).to_have_count(0)
    live.get_by_role("button", name="Resume").click()
    page.wait_for_url(base + "?done=resume")
    expect(page.get_by_role("status")).to_have_text("Campaign resumed.")
    expect(heading_status).to_have_text("active")
    expect(live.get_by_role("button", name="Resume")).to_have_count(0)
    expect(live.get_by_role("button", name="Pause")).to_be_visible()
    page.evaluate(WATCH_FINAL)
    worker = console.processes.start("worker")

    # The counters move while the page stays where it is; then the campaign finishes.
    expect(live.locator('[data-counter="attempts"]')).not_to_have_text("0")
    expect(live.locator(".badge-finished")).to_be_visible()
    assert worker.poll() is None, "the worker stopped"
    expect(live.locator('[data-counter="final"]')).to_have_text(str(CONTACTS))
    expect(live.locator('[data-counter="in_flight"]')).to_have_text("0")
    expect(live.get_by_role("button", name="Pause")).to_have_count(0)
    expect(heading_status).to_have_text("finished")  # the heading follows the live part
    seen = [int(value) for value in page.evaluate("window.heraldSeenFinal")]
    print("final counter as the page showed it:", seen)
    assert seen[0] == 0 and seen[-1] == CONTACTS and seen == sorted(seen), seen
    reached = live.locator('[data-counter="reached"]').inner_text().split()[0]
    shoot(page, console, "overview-finished")
    # The buttons swapped in by the page's script work too (their form carries this session's CSRF token).
    live.get_by_role("button", name="Archive").click()
    page.wait_for_url(base + "?done=archive")
    expect(page.get_by_role("status")).to_have_text("Campaign archived.")
    expect(heading_status).to_contain_text("archived")

    _open_tab(page, "Contacts")
    expect(page.locator("table.rows tbody tr")).to_have_count(CONTACTS)
    shoot(page, console, "contacts")
    _open_tab(page, "Calls")
    expect(page.locator(".count")).to_have_text(re.compile(rf"^{CONTACTS} calls"))
    recording = page.get_by_role("link", name=re.compile(r"^Recording of call ")).first.get_attribute("href")
    shoot(page, console, "calls")

    # The forecast at any time: after the run, what was reached is "now".
    _open_tab(page, "Forecast")
    expect(page.locator('[data-figure="reach"]')).to_contain_text(f"now {reached}")

    # Analytics (it may be computed first), then each Download CSV: the bytes `herald export` writes.
    _open_tab(page, "Analytics")
    expect(page.locator("section.analytics").first).to_be_visible()
    downloads = page.get_by_role("link", name=re.compile(r"^Download CSV: "))
    assert [label.removeprefix("Download CSV: ") for label in _labels(downloads)] == EXPORTS
    for kind in EXPORTS:
        with page.expect_download() as download_info:
            page.get_by_role("link", name=f"Download CSV: {kind}", exact=True).click()
        downloaded = Path(download_info.value.path()).read_bytes()
        exported = tmp_path / f"export-{kind}.csv"
        result = console.processes.run("export", str(campaign_id), kind, "-o", str(exported))
        assert result.returncode == 0, result.stderr
        assert downloaded == exported.read_bytes(), kind
        assert downloaded.count(b"\n") > 1, kind  # a header and rows
    charts = page.locator("[data-plotly]")
    assert charts.count() > 0
    expect(page.locator(".js-plotly-plot")).to_have_count(charts.count())  # all drawn
    shoot(page, console, "analytics")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(console.url + "/login")

    # Another business's user: not in the list, and a 404 for every URL of the campaign, reading or acting.
    sign_in(page, console, console.globex)
    expect(page.get_by_text("Recordatorio en vivo")).to_have_count(0)
    token = page.locator('input[name="csrf_token"]').first.get_attribute("value")
    for path in (
        "",
        "/live",
        "/contacts",
        "/calls",
        "/analytics",
        "/forecast",
        "/contacts/upload",
        *(f"/exports/{kind}.csv" for kind in EXPORTS),
    ):
        answer = page.request.get(base + path, max_redirects=0)
        assert answer.status == 404, (path, answer.status)
    assert recording is not None
    assert page.request.get(console.url + recording, max_redirects=0).status == 404
    for action in ("pause", "archive"):
        acted = page.request.post(base + "/lifecycle", form={"csrf_token": token, "action": action}, max_redirects=0)
        assert acted.status == 404, (action, acted.status)
    response = page.goto(base + "/analytics")
    assert response is not None and response.status == 404
    shoot(page, console, "other-business-campaign-404")
    assert len(console.screenshots) == 2 * 7
    print("screenshots:", *console.screenshots, sep="\n  ")


def _labels(links: Any) -> list[str]:
    return [links.nth(index).get_attribute("aria-label") for index in range(links.count())]
