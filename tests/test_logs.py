"""Herald's log lines: JSON or text by terminal and HERALD_LOG_FORMAT, and secrets masked in every part of a record;
and a real `herald serve` writing JSON access lines without the API key."""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald import logs
from herald.engine.clock import RealClock
from herald.ids import IdFactory
from herald.store.queries import Store
from herald.store.tenancy import create_key, ensure_business


def emit(handler_format: logs.Format, *args: object, **extra: object) -> str:
    """One record through the configured handler (formatter and Redact), as written."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if handler_format == "json" else logs.TextFormatter())
    handler.addFilter(logs.Redact())
    logger = logging.getLogger("herald.test_logs")
    logger.propagate = False
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    message, *rest = args
    logger.info(message, *rest, extra=extra)
    return stream.getvalue()


def test_json_line_fields() -> None:
    line = emit("json", "answered %s in %d ms", "GET /x", 12, method="GET", status=200)
    record = json.loads(line)
    assert record["level"] == "info" and record["logger"] == "herald.test_logs"
    assert record["message"] == "answered GET /x in 12 ms" and record["method"] == "GET" and record["status"] == 200
    assert record["time"].endswith("Z") and "T" in record["time"]
    assert line.count("\n") == 1


def test_text_line_is_for_people() -> None:
    line = emit("text", "worker %s started", 3, pid=42)
    assert "INFO" in line and "herald.test_logs: worker 3 started" in line and "pid=42" in line
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)


def test_secrets_are_masked_in_message_arguments_extras_and_tracebacks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_TOKEN", "tok-1234567890")
    monkeypatch.setenv("PLAIN_NAME", "credential-by-reference")
    monkeypatch.setenv(logs.PROTECT_VARIABLE, "PLAIN_NAME")
    key = "hk_" + "A" * 43
    line = emit(
        "json",
        "headers %s url %s token %s ref %s key %s",
        {"Authorization": "Bearer abc.def", "x-herald-signature": "c2lnbmF0dXJl"},
        "postgresql+psycopg://herald:pg-pass-99@db/herald",
        "tok-1234567890",
        "credential-by-reference",
        key,
        body="Authorization: api-key " + key,
    )
    for secret in ("abc.def", "c2lnbmF0dXJl", "pg-pass-99", "tok-1234567890", "credential-by-reference", key):
        assert secret not in line
    record = json.loads(line)
    assert "herald:[redacted]@db" in record["message"] and record["body"].startswith("Authorization: [redacted]")

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.Redact())
    logger = logging.getLogger("herald.test_logs.exc")
    logger.propagate, logger.handlers = False, [handler]
    try:
        raise RuntimeError("provider said no to token tok-1234567890")
    except RuntimeError:
        logger.exception("start failed")
    written = json.loads(stream.getvalue())
    assert "RuntimeError" in written["exception"] and "tok-1234567890" not in written["exception"]


@given(
    secret=st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-_.", min_size=6, max_size=40),
    before=st.text(max_size=30),
    after=st.text(max_size=30),
)
def test_a_protected_value_never_survives(secret: str, before: str, after: str) -> None:
    text = logs.redact(before + secret + after, [secret])
    assert secret not in text or secret in logs.MASK


def test_format_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(logs.FORMAT_VARIABLE, raising=False)
    assert logs.chosen_format(io.StringIO()) == "json"
    leader, follower = os.openpty()  # a real terminal
    try:
        with os.fdopen(follower, "w", closefd=False) as terminal:
            assert logs.chosen_format(terminal) == "text"
            monkeypatch.setenv(logs.FORMAT_VARIABLE, "JSON")
            assert logs.chosen_format(terminal) == "json"
    finally:
        os.close(leader)
        os.close(follower)
    monkeypatch.setenv(logs.FORMAT_VARIABLE, "text")
    assert logs.chosen_format(io.StringIO()) == "text"
    monkeypatch.setenv(logs.FORMAT_VARIABLE, "yaml")
    with pytest.raises(ValueError, match="json or text"):
        logs.chosen_format(io.StringIO())


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str, Path]]:
    """`herald serve` on a SQLite file, stderr to a file (not a terminal); yields its URL, an API key and the log."""
    url = f"sqlite:///{tmp_path / 'herald.db'}"
    store = Store.open(url)
    with store.tx() as tx:
        business, _ = ensure_business(tx, "acme", RealClock().now(), IdFactory())
        _, key = create_key(tx, business.id, RealClock().now())
    store.close()
    port = _free_port()
    log_path = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if k != logs.FORMAT_VARIABLE}
    env.update(HERALD_DATABASE_URL=url, PYTHONUNBUFFERED="1")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "herald", "serve", "--port", str(port)], stdout=log, stderr=log, env=env
        )
    try:
        base = f"http://127.0.0.1:{port}"
        poll(lambda: _healthy(base, process))
        yield base, key, log_path
    finally:
        process.terminate()
        process.wait(timeout=60)


def poll(condition: Callable[[], object]) -> None:
    """Check `condition` until it holds: waiting on a state, not a sleep standing in for one (the bound only guards
    against a hang)."""
    deadline = time.monotonic() + 600
    while not condition():
        assert time.monotonic() < deadline, "gave up waiting"
        time.sleep(0.05)


def _healthy(base: str, process: subprocess.Popen[bytes]) -> bool:
    assert process.poll() is None, "herald serve exited"
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_writes_json_lines_with_access_fields_and_no_key(served: tuple[str, str, Path]) -> None:
    base, key, log_path = served
    assert httpx.get(f"{base}/api/v1.0/agents", headers={"Authorization": f"api-key {key}"}).status_code == 200
    assert httpx.get(f"{base}/api/v1.0/agents", headers={"Authorization": "api-key hk_wrong_key_0123456789ab"}).status_code == 401  # fmt: skip

    def access_lines() -> list[dict[str, object]]:
        lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
        return [line for line in lines if line["logger"] == "herald.access" and "agents" in str(line["path"])]

    # The access line is written after the response is sent: poll the file for it.
    poll(lambda: len(access_lines()) >= 2)
    text = log_path.read_text()
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]  # every line is one JSON object
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # type: ignore[union-attr]
    ok, refused = access_lines()
    assert ok["status"] == 200 and ok["path"] == "/api/v1.0/agents" and ok["method"] == "GET"
    assert isinstance(ok["duration_ms"], float) and ok["business"]
    assert refused["status"] == 401 and "business" not in refused
    assert key not in text and "hk_wrong_key" not in text
