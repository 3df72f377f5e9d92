"""The browser test harness: Debian's chromium driven by Playwright, against a real `herald serve`.

- `chromium`: /usr/bin/chromium, installed with `apt-get install -y chromium` when missing and the tests run as
  root; otherwise the browser tests are skipped with the reason. Playwright's own browser download
  (`playwright install`) is never used: it fails on these machines.
- `browser`: one headless Chromium for the session, launched with the flags of ../shared/DESIGN.md.
- `live_console`: `herald serve` on a free port over a fresh SQLite file with two businesses and a user each; its
  `processes` start more `herald` commands on the same database (e.g. `herald worker`), and every process is stopped
  at the end of the test. `page` signs nothing in: tests sign in through the form.
- `shoot(page, name)`: screenshots at 1280 px and 390 px wide, saved in the test's tmp folder (kept by pytest as
  the run's artifacts; the paths are printed).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.queries import Store
from herald.store.tenancy import ensure_business
from herald.store.users import create_user

from ..live.processes import HANG_GUARD_SECONDS, Processes, serve

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WIDTHS = {"wide": (1280, 900), "narrow": (390, 844)}
PASSWORD = "correct horse battery"


def _apt_install() -> str:
    """Install Debian's chromium; "" on success, else what went wrong."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for attempt in (
        ["apt-get", "install", "-y", "chromium"],
        ["apt-get", "update"],
        ["apt-get", "install", "-y", "chromium"],
    ):
        done = subprocess.run(attempt, capture_output=True, text=True, env=env, timeout=HANG_GUARD_SECONDS, check=False)
        if attempt[1] == "install" and done.returncode == 0 and CHROMIUM.exists():
            return ""
        last = done.stderr.strip().splitlines()[-1:] or [f"exit code {done.returncode}"]
    return last[0]


@pytest.fixture(scope="session")
def chromium() -> Path:
    """Debian's chromium, installed when missing (as root); the tests that need it are skipped otherwise."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and installing it needs root: run `apt-get install -y chromium`")
    if shutil.which("apt-get") is None:
        pytest.skip(f"{CHROMIUM} is missing and there is no apt-get to install Debian's chromium")
    problem = _apt_install()
    if problem:
        pytest.skip(f"`apt-get install -y chromium` failed: {problem}")
    return CHROMIUM


@pytest.fixture(scope="session")
def browser(chromium: Path) -> Iterator[Any]:
    """One headless Chromium for the whole session."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright's Python package is a dev dependency")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(chromium), headless=True, args=LAUNCH_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@dataclass
class LiveConsole:
    """A running `herald serve`, its database, and the e-mails of the users of businesses acme and globex."""

    url: str
    database_url: str
    folder: Path
    processes: Processes
    acme: str = "ops@acme.test"
    globex: str = "ops@globex.test"
    screenshots: list[Path] = field(default_factory=list)

    def store(self) -> Store:
        """The database of the server (close it after use)."""
        return Store.open(self.database_url, migrate=False)


@pytest.fixture
def live_console(tmp_path: Path) -> Iterator[LiveConsole]:
    """`herald serve` on a free port over a fresh SQLite file, with the users of acme and globex; stopped after."""
    database_url = f"sqlite:///{tmp_path / 'herald.db'}"
    store = Store.open(database_url)
    now = RealClock().now()
    with store.tx() as tx:
        for name in ("acme", "globex"):
            business, _ = ensure_business(tx, name, now, IdFactory())
            create_user(tx, business.id, f"ops@{name}.test", PASSWORD, now)
    store.close()
    processes = Processes(tmp_path, database_url)
    try:
        _, url = serve(processes)
        yield LiveConsole(url, database_url, tmp_path, processes)
    finally:
        processes.stop_all()


def _page(browser: Any, **options: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True, **options)
    errors: list[str] = []
    try:
        opened = context.new_page()
        opened.on("pageerror", lambda error: errors.append(str(error)))

        def check(response: Any) -> None:
            # Pages may answer 4xx on purpose (a refused sign-in, a form with errors, a 404); what they load may not.
            if response.status >= 400 and response.request.resource_type != "document":
                errors.append(f"{response.status} {response.url}")

        opened.on("response", check)
        yield opened
    finally:
        context.close()
    # A script error or a stylesheet or script that fails to load is a bug even when the page still works.
    assert not errors, errors


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh browser context (no cookies) and page, 1280 px wide, that accepts downloads; the test fails if a
    page it opened had a script error."""
    yield from _page(browser)


@pytest.fixture
def page_without_js(browser: Any) -> Iterator[Any]:
    """The same with JavaScript off: reading, and every form, must work without it."""
    yield from _page(browser, java_script_enabled=False)


#: True once the page is no wider than `width` and every Plotly chart has been redrawn to its box's width (charts
#: follow a resize of the window a moment later, from a debounced handler of Plotly's `responsive` option).
_FITS = """width => document.documentElement.scrollWidth <= width
  && [...document.querySelectorAll(".js-plotly-plot")].every(chart => {
    const svg = chart.querySelector("svg.main-svg");
    return svg === null || Math.abs(svg.getBoundingClientRect().width - chart.clientWidth) < 2;
  })"""
#: How long a page may take to settle after a resize (a hang guard: it settles in well under a second).
_SETTLE_MS = 20_000


def shoot(page: Any, console: LiveConsole, name: str) -> None:
    """Full-page screenshots of the current page at 390 px and at 1280 px wide (ending at 1280 px), after checking
    that the page is no wider than the screen at either width (waiting for charts to follow the new width)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    folder = console.folder / "screenshots"
    folder.mkdir(exist_ok=True)
    for width, height in (WIDTHS["narrow"], WIDTHS["wide"]):
        page.set_viewport_size({"width": width, "height": height})
        # Nothing wider than the screen: the page scrolls down only (wide tables scroll inside their own box).
        try:
            page.wait_for_function(_FITS, arg=width, timeout=_SETTLE_MS)
        except PlaywrightTimeout:
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            raise AssertionError(
                f"{name} is wider than {width} px ({scroll_width} px) or its charts never fit"
            ) from None
        path = folder / f"{name}-{width}px.png"
        page.screenshot(path=str(path), full_page=True)
        console.screenshots.append(path)


def sign_in(page: Any, console: LiveConsole, email: str) -> None:
    """Sign in through the form."""
    page.goto(console.url + "/")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(console.url + "/")
