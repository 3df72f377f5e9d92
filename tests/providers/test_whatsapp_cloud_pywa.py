"""pywa (Meta's API as an independent library sees it) accepts the fake Cloud API as the real thing.

pywa hard-codes graph.facebook.com, so its httpx session gets a transport that sends every request to the fake.
Its webhook parser swallows errors into a log, so each check counts that its handler really ran.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

pywa = pytest.importorskip("pywa")

from pywa import WhatsApp  # noqa: E402
from pywa.types import CallbackButton, Message, MessageStatus  # noqa: E402
from pywa.types.templates import BodyText, TemplateLanguage  # noqa: E402

from herald.testing.fake_whatsapp import PHONE_NUMBER_ID, WABA_ID, FakeWhatsApp  # noqa: E402

SECRET = "pywa-app-secret-0123456789"
TOKEN = "EAAG-pywa-token-0123456789"


class ToFake(httpx.HTTPTransport):
    """Sends every request to the fake, whatever host the client aimed at."""

    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = httpx.URL(base)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(scheme=self.base.scheme, host=self.base.host, port=self.base.port)
        return super().handle_request(request)


class PywaReceiver:
    """An HTTP endpoint that hands each webhook to pywa: its validator decides the answer (200 or 401)."""

    def __init__(self) -> None:
        self.wa: WhatsApp | None = None
        self.lock = threading.Lock()
        self.answers: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status = receiver.receive(body, self.headers.get("X-Hub-Signature-256"))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/webhook"

    def receive(self, body: bytes, signature: str | None) -> int:
        # One at a time: pywa's handlers append to the test's lists.
        with self.lock:
            assert self.wa is not None
            refused = self.wa.webhook_update_validator(body, signature)
            status = refused[1] if refused else self.wa.webhook_update_handler(body)[1]
            self.answers.append(status)
            return status

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[PywaReceiver]:
    made = PywaReceiver()
    yield made
    made.close()


@pytest.fixture
def fake(receiver: PywaReceiver) -> Iterator[FakeWhatsApp]:
    outcomes = {"accepted": 0.4, "opt_out_text": 0.3, "failed": 0.3}
    with FakeWhatsApp(
        receiver.url, SECRET, token=TOKEN, shape="current", outcomes=outcomes, seed=11, max_delay=0.02
    ) as started:
        yield started


def client(fake: FakeWhatsApp) -> WhatsApp:
    session = httpx.Client(transport=ToFake(fake.url))
    return WhatsApp(
        phone_id=PHONE_NUMBER_ID,
        token=TOKEN,
        session=session,
        app_secret=SECRET,
        waba_id=WABA_ID,
        skip_duplicate_updates=False,
        api_version="23.0",
    )


def test_pywa_sends_a_template_to_the_fake_and_reads_its_answer(fake: FakeWhatsApp) -> None:
    wa = client(fake)
    sent = wa.send_template(
        to="+525500000001",
        name="promo",
        language=TemplateLanguage.SPANISH_MEX,
        params=[BodyText.params("Ana")],
        tracker="101",
    )
    assert sent.id.startswith("wamid.")
    [request] = fake.requests
    assert request["to"] == "+525500000001" and request["template"]["name"] == "promo"
    assert request["biz_opaque_callback_data"] == "101"
    assert fake.stats()["outcomes"]["101"]["wamid"] == sent.id


def test_pywa_validates_and_parses_every_webhook_the_fake_sends(
    fake: FakeWhatsApp, receiver: PywaReceiver, caplog: Any
) -> None:
    wa = receiver.wa = client(fake)
    seen: dict[str, list[Any]] = {"status": [], "button": [], "text": []}
    wa.on_message_status()(lambda _, update: seen["status"].append(update))
    wa.on_callback_button()(lambda _, update: seen["button"].append(update))
    wa.on_message()(lambda _, update: seen["text"].append(update))
    with caplog.at_level(logging.ERROR, logger="pywa"):
        for index in range(8):
            wa.send_template(
                to=f"+5255000000{index:02d}", name="promo", language=TemplateLanguage.SPANISH_MEX,
                params=[BodyText.params(f"P{index}")], tracker=str(200 + index),
            )  # fmt: skip
        assert fake.drain()
    stories = fake.stats()["outcomes"]
    # Every webhook (duplicates included) was signed as pywa expects, and pywa's handler ran for each.
    assert receiver.answers and set(receiver.answers) == {200}
    assert len(receiver.answers) == len(fake.posted)
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert len(seen["status"]) + len(seen["button"]) + len(seen["text"]) == len(fake.posted)
    for body, signature in fake.posted[:3]:
        assert wa.webhook_update_validator(body, signature) is None
        assert wa.webhook_update_validator(body, "sha256=" + "0" * 64) is not None

    for update in seen["status"]:
        assert isinstance(update, MessageStatus)
        story = stories[update.tracker]
        assert update.id == story["wamid"] and update.status.value in story["statuses"]
        if update.status.value == "failed":
            assert update.error is not None and str(update.error.code) == story["error_code"]
    for update in seen["button"]:
        assert isinstance(update, CallbackButton)
        assert update.data == "Sí" and update.reply_to_message is not None
        assert update.reply_to_message.id in {s["wamid"] for s in stories.values() if s["status"] == "accepted"}
    for update in seen["text"]:
        assert isinstance(update, Message) and update.text == "STOP" and update.reply_to_message is None
    accepted = sum(1 for s in stories.values() if s["status"] == "accepted")
    opted = sum(1 for s in stories.values() if s["status"] == "opt_out_text")
    assert (len({u.id for u in seen["button"]}), len({u.id for u in seen["text"]})) == (accepted, opted)
    assert accepted and opted
