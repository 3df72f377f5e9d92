"""Shared by the live benchmarks: throwaway databases, herald processes that are always stopped, CPU accounting.

Every process is started in its own session, and `Fleet.stop_all()` (run from `finally`, also on Ctrl-C and on
SIGTERM of the benchmark) sends SIGTERM to each one's process group, waits, then SIGKILLs what is left.
"""

from __future__ import annotations

import base64
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
import psutil
from sqlalchemy import make_url

SERVER_URL = os.environ.get("HERALD_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SECRET = base64.b64encode(b"bench-secret-0123456789abcdef0123456789").decode()
TOKEN = "bench-token-0123456789"
STOP_GRACE_SECONDS = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def sigterm_as_interrupt() -> None:
    """SIGTERM of the benchmark itself unwinds like Ctrl-C, so every `finally` stops its processes."""

    def handler(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    # A shell starts background jobs with SIGINT ignored; Ctrl-C / kill -INT must still stop the benchmark.
    signal.signal(signal.SIGINT, signal.default_int_handler)


def run_main(main: Callable[[], int]) -> int:
    """Run a benchmark's main; an interrupt (Ctrl-C, SIGTERM) exits 130 once every `finally` has stopped its
    processes and dropped its databases."""
    sigterm_as_interrupt()
    try:
        return main()
    except KeyboardInterrupt:
        print("interrupted: every process started was stopped, every database dropped", file=sys.stderr)
        return 130


# --- databases -------------------------------------------------------------------------------------------------


def _server() -> Any:
    import psycopg

    url = make_url(SERVER_URL)
    return psycopg.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 5432,
        user=url.username or "postgres",
        password=url.password,
        dbname=url.database or "postgres",
        connect_timeout=3,
        autocommit=True,
    )


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    """A fresh database URL: a SQLite file in `folder`, or a `herald_bench_<random>` PostgreSQL database that is
    dropped (WITH FORCE) at the end."""
    if backend == "sqlite":
        path = folder / f"bench-{uuid.uuid4().hex[:8]}.db"
        try:
            yield f"sqlite:///{path}"
        finally:
            for suffix in ("", "-wal", "-shm", "-writer.lock"):
                with suppress(FileNotFoundError):
                    Path(f"{path}{suffix}").unlink()
        return
    name = f"herald_bench_{uuid.uuid4().hex[:12]}"
    with _server() as server:
        server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(SERVER_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with _server() as server:
            server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def backend_pids(database_url: str) -> list[int]:
    """PostgreSQL backend pids serving this benchmark's own database (for their CPU time); [] on SQLite."""
    if not database_url.startswith("postgresql"):
        return []
    name = make_url(database_url).database
    with _server() as server:
        rows = server.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (name,)).fetchall()
    return [int(row[0]) for row in rows]


def database_stats(database_url: str) -> dict[str, int]:
    """PostgreSQL's counters of this database (`pg_stat_database`: sessions opened, commits, rollbacks, deadlocks);
    {} on SQLite. The statistics collector lags by up to half a second."""
    if not database_url.startswith("postgresql"):
        return {}
    name = make_url(database_url).database
    with _server() as server:
        row = server.execute(
            "SELECT sessions, xact_commit, xact_rollback, deadlocks FROM pg_stat_database WHERE datname = %s", (name,)
        ).fetchone()
    return dict(zip(("sessions", "commits", "rollbacks", "deadlocks"), (int(v) for v in row), strict=True))


class WaitSampler:
    """Samples `pg_stat_activity` of one database every `every` seconds in a thread: what its backends were doing
    (active on CPU, waiting on a lock and for which statement, idle in a transaction, idle). A diagnostic."""

    def __init__(self, database_url: str, every: float = 0.05) -> None:
        import threading
        from collections import Counter

        self.name = make_url(database_url).database
        self.every = every
        self.counts: Counter[str] = Counter()
        self.samples = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wait-sampler", daemon=True)

    def _run(self) -> None:
        with _server() as server:
            while not self._done.wait(self.every):
                rows = server.execute(
                    "SELECT state, wait_event_type, wait_event, left(regexp_replace(query, '\\s+', ' ', 'g'), 90)"
                    " FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.name,),
                ).fetchall()
                self.samples += 1
                for state, wait_type, wait, query in rows:
                    if state == "idle":
                        key = "idle"
                    elif wait_type == "Lock":
                        key = f"lock wait ({wait}): {query}"
                    elif wait_type in (None, "CPU"):
                        key = f"{state}, running: {query}" if state == "active" else str(state)
                    else:
                        key = f"{state}, {wait_type}:{wait}"
                    self.counts[key] += 1

    def __enter__(self) -> WaitSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._done.set()
        self._thread.join()

    def top(self, count: int = 8) -> dict[str, float]:
        """The most common states, as backends busy that way on average (sightings / samples)."""
        return {key: round(n / max(self.samples, 1), 2) for key, n in self.counts.most_common(count)}


# --- processes -------------------------------------------------------------------------------------------------


class Fleet:
    """Processes this benchmark started, each with its output in a log file; all stopped by `stop_all()`."""

    def __init__(self, folder: Path, database_url: str, env: dict[str, str]) -> None:
        self.folder = folder
        self.env = {**os.environ, "HERALD_DATABASE_URL": database_url, "PYTHONUNBUFFERED": "1", **env}
        self.started: list[tuple[str, subprocess.Popen[bytes]]] = []
        #: When set, every `python -m` process runs under benchmarks/thread_profile.py, its profile written here.
        self.profile: Path | None = None

    def start(self, role: str, argv: list[str], *, stdout_pipe: bool = False) -> subprocess.Popen[bytes]:
        log = (self.folder / f"{len(self.started) + 1:02d}-{role}.log").open("wb")
        if self.profile is not None and argv[1:2] == ["-m"]:
            self.profile.mkdir(parents=True, exist_ok=True)
            out = self.profile / f"{len(self.started) + 1:02d}-{role}.prof"
            argv = [argv[0], str(Path(__file__).with_name("thread_profile.py")), str(out), *argv[1:]]
        process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log,
            env=self.env,
            start_new_session=True,  # its own process group: `herald serve --processes N` children go with it
        )
        self.started.append((role, process))
        return process

    def herald(self, role: str, *args: str) -> subprocess.Popen[bytes]:
        return self.start(role, [sys.executable, "-m", "herald", *args])

    def fake_agent(self, callback_port: int, *, min_delay: float, max_delay: float, senders: int) -> str:
        """Start the fake agent backend; returns its base URL once it listens."""
        process = self.start(
            "fake-agent",
            [
                sys.executable, "-m", "herald.testing.fake_agent", "--port", "0", "--secret", SECRET,
                "--token", TOKEN, "--seed", "1", "--min-delay", str(min_delay), "--max-delay", str(max_delay),
                "--senders", str(senders), "--callback-url", f"http://127.0.0.1:{callback_port}/webhooks/http",
            ],
            stdout_pipe=True,
        )  # fmt: skip
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line:
            raise RuntimeError(f"the fake agent did not start: {self.log('fake-agent')[-2000:]}")
        return f"http://127.0.0.1:{json.loads(line)['port']}"

    def log(self, role: str) -> str:
        return "\n".join(
            path.read_text(errors="replace") for path in sorted(self.folder.glob(f"*-{role}.log")) if path.exists()
        )

    def check_alive(self) -> None:
        for role, process in self.started:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{role} (pid {process.pid}) exited with {process.returncode}: {self.log(role)[-3000:]}"
                )

    def stop(self, process: subprocess.Popen[bytes]) -> int:
        """SIGTERM the process group, wait, SIGKILL it if it lingers; returns the exit code."""
        if process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        # Children of a group leader that exited (uvicorn's workers) are stopped with the group.
        with suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.stdout is not None:
            process.stdout.close()
        return process.returncode

    def stop_all(self) -> None:
        for _, process in reversed(self.started):
            self.stop(process)


def wait_for(
    condition: Callable[[], Any], what: str, timeout: float, fleet: Fleet | None = None, every: float = 0.1
) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        if fleet is not None:
            fleet.check_alive()
        time.sleep(every)
    raise TimeoutError(f"gave up after {timeout:.0f} s waiting for {what}")


def healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


# --- CPU accounting --------------------------------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their live descendants (gone ones count 0)."""
    total = 0.0
    seen: set[int] = set()
    for pid in pids:
        try:
            root = psutil.Process(pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.Error:
            continue
        for process in tree:
            if process.pid in seen:
                continue
            seen.add(process.pid)
            with suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system
    return total


def machine() -> dict[str, Any]:
    model = ""
    with suppress(OSError, subprocess.SubprocessError):
        for line in subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=5, check=False
        ).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    load = os.getloadavg()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model or platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in load],
    }


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(headers[i]), *(len(row[i]) for row in rows)) for i in range(len(headers))]
    lines = [
        "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths, strict=True)))
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append(
            "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    return "\n".join(lines)
