"""Figures that take longer to compute than a page may take to render (a campaign's analytics, its forecast).

A page asks for a figure with the campaign's *fingerprint* (cheap indexed counts that change when its data does).
It gets the last value computed for that fingerprint at once; a value computed for an older fingerprint is shown as
it is (labelled with its time) while a fresh one is computed in the background; when there is no value yet, the
page waits up to `WAIT_SECONDS` for it and otherwise says it is being computed (and reloads itself, without
JavaScript, with a `<meta http-equiv="refresh">`). So no page view waits seconds on a large campaign, and a figure
is computed at most once per process at a time, however many people look at it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

#: How long a page waits for a figure it has never computed before showing "being computed".
WAIT_SECONDS: float | None = 0.3
#: Figures kept per process (oldest dropped first).
_KEEP = 64


@dataclass(frozen=True, slots=True)
class Computed:
    """A figure as a page shows it: the value (None while the first one is computed), when it was computed, and
    whether the campaign has changed since (a newer one is on its way)."""

    value: Any
    computed_at: datetime | None
    stale: bool

    @property
    def pending(self) -> bool:
        """True while no value exists yet."""
        return self.computed_at is None


@dataclass(slots=True)
class _Entry:
    fingerprint: Hashable
    value: Any
    computed_at: datetime


# Reentrant: a computation that is already done runs its done-callback (`_finish`) at once, inside `_start`.
_lock = threading.RLock()
_values: dict[Hashable, _Entry] = {}
_running: dict[Hashable, tuple[Hashable, Future[Any]]] = {}
# Two at once: one long analysis never holds up every other campaign's figures.
_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="herald-web-figures")


def _finish(key: Hashable, fingerprint: Hashable, future: Future[Any]) -> None:
    with _lock:
        if _running.get(key, (None, None))[1] is future:
            del _running[key]
        if future.cancelled() or future.exception() is not None:
            return  # the next page view tries again (and shows the error if it happens again while waiting)
        if len(_values) >= _KEEP and key not in _values:
            _values.pop(next(iter(_values)))
        _values[key] = _Entry(fingerprint, future.result(), datetime.now(UTC))


def _start(key: Hashable, fingerprint: Hashable, compute: Callable[[], Any]) -> Future[Any]:
    # Called with _lock held: one computation per key at a time, for the newest fingerprint asked.
    running = _running.get(key)
    if running is not None and running[0] == fingerprint:
        return running[1]
    future = _pool.submit(compute)
    _running[key] = (fingerprint, future)
    future.add_done_callback(lambda done: _finish(key, fingerprint, done))
    return future


def figure(key: Hashable, fingerprint: Hashable, compute: Callable[[], Any]) -> Computed:
    """The figure `key` for data in state `fingerprint`, computed by `compute()` (in a worker thread) when needed.

    A figure never computed before is waited for up to WAIT_SECONDS (None: as long as it takes, as tests do). An
    exception of `compute` reaches the caller only while it waits for a first value.
    """
    with _lock:
        entry = _values.get(key)
        if entry is not None and entry.fingerprint == fingerprint:
            return Computed(entry.value, entry.computed_at, stale=False)
        future = _start(key, fingerprint, compute)
    if entry is not None:
        return Computed(entry.value, entry.computed_at, stale=True)
    try:
        value = future.result(timeout=WAIT_SECONDS)
    except FutureTimeout:
        return Computed(None, None, stale=True)
    return Computed(value, datetime.now(UTC), stale=False)


def forget(prefix: Hashable | None = None) -> None:
    """Drop kept figures (all, or those whose key is a tuple starting with `prefix`): tests start clean."""
    with _lock:
        for key in list(_values):
            if prefix is None or (isinstance(key, tuple) and key[:1] == (prefix,)):
                del _values[key]
