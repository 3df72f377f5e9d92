"""Run a Python module under cProfile in every thread, not only the main one (`python -m cProfile` sees the main
thread alone, and a worker's starts, the fake agent's answers and senders and `herald serve`'s endpoints run in
others), timed by each thread's CPU clock (waits cost nothing). The threads' profiles are merged and written to OUT (a pstats file) when the process exits.

    .venv/bin/python benchmarks/thread_profile.py OUT.prof -m herald serve --port 8000

A diagnostic of bench_live's `--profile`: profiling costs CPU itself, so read the shares, not the totals.
"""

from __future__ import annotations

import atexit
import cProfile
import pstats
import runpy
import sys
import threading
import time
from typing import Any

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _new_profile() -> cProfile.Profile:
    # Each thread's CPU time, not the wall clock: a thread waiting on a socket or a lock costs nothing here.
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    return profile


def _first_call(*_: Any) -> None:
    # Called on a new thread's first event: from then on that thread reports to a profile of its own (enable()
    # replaces this hook for the thread).
    _new_profile().enable()


def _write(out: str) -> None:
    with _lock:
        profiles = list(_profiles)
    stats: pstats.Stats | None = None
    for profile in profiles:
        try:
            profile.create_stats()
        except Exception:  # a profile still being written by a thread that is ending: skip it
            continue
        if not getattr(profile, "stats", None):
            continue
        if stats is None:
            stats = pstats.Stats(profile)
        else:
            stats.add(profile)
    if stats is not None:
        stats.dump_stats(out)


def main() -> None:
    """`thread_profile.py OUT -m MODULE ARGS...`"""
    if len(sys.argv) < 4 or sys.argv[2] != "-m":
        raise SystemExit(__doc__)
    out, module = sys.argv[1], sys.argv[3]
    sys.argv = [module, *sys.argv[4:]]
    atexit.register(_write, out)
    threading.setprofile(_first_call)
    _new_profile().enable()
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
