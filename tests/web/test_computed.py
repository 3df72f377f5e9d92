"""`web.computed`: a slow figure is computed once per state, shown stale while a newer one is computed, and a page
that finds none yet says so (and reloads itself) instead of waiting seconds."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from herald.domain.statuses import CampaignStatus
from herald.web import computed
from herald.web.campaign_results import reload_after

from .conftest import Console


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    computed.forget()
    yield
    computed.forget()


def test_computed_once_per_state_then_stale_while_the_next_is_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(computed, "WAIT_SECONDS", None)
    calls: list[int] = []

    def compute(value: int) -> int:
        calls.append(value)
        return value

    first = computed.figure(("t", 1), "v1", lambda: compute(1))
    assert (first.value, first.stale, first.pending) == (1, False, False)
    again = computed.figure(("t", 1), "v1", lambda: compute(99))
    assert again.value == 1 and calls == [1]  # same state: not computed again
    # The campaign changed: the old value is shown at once, marked stale, while the new one is computed.
    release = threading.Event()
    started = threading.Event()

    def slow() -> int:
        started.set()
        release.wait()
        return 2

    stale = computed.figure(("t", 1), "v2", slow)
    assert (stale.value, stale.stale) == (1, True)
    assert started.wait(timeout=60)
    assert computed.figure(("t", 1), "v2", slow).value == 1  # still computing: not started twice
    release.set()
    # A figure already finished when it is handed out (its callback runs at once) must not deadlock.
    assert computed.figure(("t", 9), "v1", lambda: 9).value == 9


def test_a_figure_not_ready_in_time_is_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(computed, "WAIT_SECONDS", 0)
    release = threading.Event()
    pending = computed.figure(("t", 2), "v1", lambda: release.wait() and 5)
    assert pending.pending and pending.value is None
    release.set()


def test_the_analytics_page_reloads_itself_while_its_figures_are_computed(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = console.campaign(console.acme, "Cobranza", contacts=3)
    client = console.sign_in(console.acme)
    release = threading.Event()
    monkeypatch.setattr(computed, "WAIT_SECONDS", 0)
    monkeypatch.setattr(
        "herald.web.campaign_results.campaign_reports", lambda store, campaign_id: release.wait() and []
    )
    page = client.get(f"/campaigns/{campaign}/analytics").text
    assert '<meta http-equiv="refresh" content="2">' in page and "being computed" in page
    assert 'aria-label="Download CSV: contacts"' in page  # the downloads never wait for the figures
    release.set()


def test_a_figure_page_reloads_itself_until_it_shows_a_value_that_will_not_change() -> None:
    def of(status: CampaignStatus) -> Any:
        return SimpleNamespace(status=status)

    pending = computed.Computed(None, None, stale=True)
    stale = computed.Computed(1, datetime.now(UTC), stale=True)
    fresh = computed.Computed(1, datetime.now(UTC), stale=False)
    assert reload_after(pending, of(CampaignStatus.ACTIVE)) == 2  # the first value: always
    # A newer value of a campaign that no longer moves is the last one: worth reloading for, once.
    assert reload_after(stale, of(CampaignStatus.FINISHED)) == 5
    assert reload_after(stale, of(CampaignStatus.READY)) == 5
    # A running campaign's figures are always on their way: its pages would reload for ever.
    assert reload_after(stale, of(CampaignStatus.ACTIVE)) is None
    assert reload_after(fresh, of(CampaignStatus.FINISHED)) is None
