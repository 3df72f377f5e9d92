"""The campaign page on the live engine, as real processes (`herald serve` + `herald worker`, simulator provider on
the real clock, scaled down): sign in, activate with the Overview's button, watch the live counters move until the
campaign finishes, then open Analytics and download each CSV: the bytes of `herald export`.

(Over HTTP from this process; the browser version belongs to the console's Playwright harness.)
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.queries import Store
from herald.store.tenancy import ensure_business
from herald.store.users import create_user

from .processes import Processes, log_of, processes, serve, wait_for

__all__ = ["processes"]

CAMPAIGN = """
name: Console live
channel: phone_call
timezone: America/Mexico_City
retries: 0
concurrency_limit: 1
agent: {name: Test, tags: [promise], conversion: {tag: promise}}
provider: simulator
provider_options:
  time_scale: 0.01
  conversation: {follow_up_rate: 0}
"""
CONTACTS = 12
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
_FINAL = re.compile(r'<dd data-counter="final">(\d+)</dd>')


def _csrf(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None
    return found.group(1)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # one database is enough here: CI time
def test_activate_watch_the_counters_and_download_every_export(processes: Processes, tmp_path: Path) -> None:
    Store.open(processes.database_url).close()  # the schema, as `herald init` makes it
    (tmp_path / "campaign.yaml").write_text(CAMPAIGN)
    rows = ["contact,name,context", *(f"+5255{i:08d},Person {i},ctx" for i in range(CONTACTS))]
    (tmp_path / "contacts.csv").write_text("\n".join(rows) + "\n")
    for args in (
        ("campaign", "create", str(tmp_path / "campaign.yaml")),
        ("contacts", "import", "1", str(tmp_path / "contacts.csv")),
    ):
        result = processes.run(*args)
        assert result.returncode == 0, result.stderr
    store = Store.open(processes.database_url, migrate=False)
    with store.tx() as tx:  # a console user of the business the campaign file went to
        business, _ = ensure_business(tx, "default", RealClock().now(), IdFactory())
        create_user(tx, business.id, "ops@default.test", "live password 1", RealClock().now())
    store.close()
    _, base = serve(processes)
    with httpx.Client(base_url=base, timeout=60, follow_redirects=False) as client:
        login = client.post(
            "/login",
            data={
                "csrf_token": _csrf(client.get("/login").text),
                "email": "ops@default.test",
                "password": "live password 1",
            },
        )
        assert login.status_code == 303, login.text
        overview = client.get("/campaigns/1").text
        assert ">Activate</button>" in overview
        activated = client.post("/campaigns/1/lifecycle", data={"csrf_token": _csrf(overview), "action": "activate"})
        assert activated.status_code == 303
        worker = processes.start("worker")
        seen: list[int] = []

        def finished() -> bool:
            assert worker.poll() is None, log_of(worker)
            part = client.get("/campaigns/1/live").text
            found = _FINAL.search(part)
            assert found is not None
            if not seen or seen[-1] != int(found.group(1)):
                seen.append(int(found.group(1)))
            return 'badge-finished">finished<' in part

        wait_for(finished, "the campaign to finish, seen on the live counters")
        assert seen[-1] == CONTACTS and seen == sorted(seen)
        assert len(seen) >= 3, seen  # the counters moved while it ran, not only from start to end
        wait_for(lambda: "being computed" not in client.get("/campaigns/1/analytics").text, "the analytics figures")
        analytics = client.get("/campaigns/1/analytics").text
        kinds = re.findall(r'aria-label="Download CSV: ([a-z]+)"', analytics)
        assert kinds == ["contacts", "calls", "results", "recordings"]
        for kind in kinds:
            target = tmp_path / f"export-{kind}.csv"
            result = processes.run("export", "1", kind, "-o", str(target))
            assert result.returncode == 0, result.stderr
            download = client.get(f"/campaigns/1/exports/{kind}.csv")
            assert download.status_code == 200
            assert download.content == target.read_bytes(), kind
