"""Golden files for every export: header, order, quoting, formats (SPEC §7), driven by scripted provider events."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select

from herald.domain.campaign import parse_campaign
from herald.domain.durations import parse_duration
from herald.engine.campaigns import act, add_contacts, create_campaign
from herald.engine.clock import VirtualClock
from herald.engine.runner import Engine
from herald.exports.formats import ExportNotAvailable, export
from herald.exports.kinds import ExportKind
from herald.ids import IdFactory
from herald.providers.base import CallRequest, MessageRequest, ProviderEvent, StartResult
from herald.store import schema as t
from herald.store.queries import NewContact, Store

from ..conftest import START


class ScriptedProvider:
    """A provider whose answers the test writes: ids in order, no events of its own (the test ingests them)."""

    name = "scripted"

    def __init__(self, results: Sequence[StartResult]) -> None:
        self._results = list(results)

    def start_calls(self, requests: Sequence[CallRequest], now: datetime) -> list[StartResult]:
        return [self._results.pop(0) for _ in requests]

    def send_messages(self, requests: Sequence[MessageRequest], now: datetime) -> list[StartResult]:
        return [self._results.pop(0) for _ in requests]

    def poll(self, now: datetime) -> list[ProviderEvent]:
        return []

    def next_event_at(self) -> datetime | None:
        return None


AGENT = {
    "tags": ["promise", "callback"],
    "fields": [{"name": "email"}, {"name": "amount"}],
    "conversion": {"tag": "promise"},
}
CONTACTS = [
    NewContact("+525500000001", 'Ana, "la jefa"', "=SUM(A1)", external_id="A-1"),
    NewContact("+525500000002", "Luis", "line1\nline2"),
]


def _setup(store: Store, channel: str, results: Sequence[StartResult], **extra: Any) -> tuple[int, Engine]:
    clock = VirtualClock(START)
    ids = IdFactory(3)
    config = parse_campaign({"name": "Golden", "channel": channel, "agent": AGENT, "failed_retry_limit": 0, **extra})
    campaign_id = create_campaign(store, config, START, ids)
    add_contacts(store, campaign_id, CONTACTS, START)
    act(store, campaign_id, "activate", START)
    engine = Engine(store, ScriptedProvider(results), clock, ids)
    engine.step(START)
    return campaign_id, engine


def _at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


@pytest.fixture
def phone(store: Store) -> tuple[int, list[str]]:
    campaign_id, engine = _setup(store, "phone_call", [StartResult("p1"), StartResult("p2")])
    events = [
        ProviderEvent("scripted", "p2", "ringing", _at(1)),
        ProviderEvent("scripted", "p2", "busy", _at(5)),
        ProviderEvent("scripted", "p1", "in-progress", _at(10), data={"answered_by": "human"}),
        ProviderEvent(
            "scripted",
            "p1",
            "ended",
            _at(135.2),
            data={
                "answered_by": "human",
                "ended_by": "user",
                "ended_reason": "user_hangup",
                "recording": True,
                "tags": ["promise"],
                "extracted": {"email": "ana@x.com", "amount": "1200"},
            },
        ),
    ]
    with store.tx() as tx:
        engine.ingest(tx, events, _at(180))
        call_ids = tx.connection.execute(select(t.calls.c.public_id).order_by(t.calls.c.id)).scalars().all()
    return campaign_id, list(call_ids)


CONTACT_HEADER = (
    "campaign_name,campaign_date,id,contact,name,context,status,retries,calls,billed_duration,last_update,follow_up,"
    "promise,callback,email,amount\r\n"
)
CONTACT_ANA = (
    'Golden,2026-01-05,A-1,+525500000001,"Ana, ""la jefa""",\'=SUM(A1),converted,0,1,02:06,2026-01-05 09:03:00,'
    "False,True,False,ana@x.com,1200\r\n"
)
CONTACT_LUIS = (
    'Golden,2026-01-05,,+525500000002,Luis,"line1\nline2",failed,0,1,00:00,2026-01-05 09:03:00,False,False,False,,\r\n'
)
CALL_HEADER = (
    "campaign_name,campaign_date,id,number_to,contact_name,type,status,answered_by,created_at,started_at,ended_at,"
    "duration,billed_duration,recording_url,promise,callback,email,amount\r\n"
)


def _read(path: Path) -> str:
    return path.read_bytes().decode("utf-8")


def test_contact_export_golden(store: Store, phone: tuple[int, list[str]], tmp_path: Path) -> None:
    campaign_id, _ = phone
    assert export(store, campaign_id, ExportKind.CONTACTS, tmp_path / "c.csv") == 2
    assert _read(tmp_path / "c.csv") == CONTACT_HEADER + CONTACT_ANA + CONTACT_LUIS


def test_results_export_keeps_only_contacts_with_extracted_data(
    store: Store, phone: tuple[int, list[str]], tmp_path: Path
) -> None:
    campaign_id, _ = phone
    export(store, campaign_id, ExportKind.RESULTS, tmp_path / "r.csv")
    assert _read(tmp_path / "r.csv") == CONTACT_HEADER + CONTACT_ANA


def test_call_and_recording_exports_golden(store: Store, phone: tuple[int, list[str]], tmp_path: Path) -> None:
    campaign_id, (ana, luis) = phone
    ana_row = (
        f'Golden,2026-01-05,{ana},+525500000001,"Ana, ""la jefa""",outbound,ended,human,2026-01-05 09:00:00,'
        f"2026-01-05 09:00:10,2026-01-05 09:02:15,02:06,02:06,http://localhost:8000/api/v1.0/call/{ana}/recording,"
        "True,False,ana@x.com,1200\r\n"
    )
    luis_row = f"Golden,2026-01-05,{luis},+525500000002,Luis,outbound,busy,,2026-01-05 09:00:00,,2026-01-05 09:00:05,00:00,00:00,,False,False,,\r\n"
    export(store, campaign_id, ExportKind.CALLS, tmp_path / "calls.csv")
    assert _read(tmp_path / "calls.csv") == CALL_HEADER + ana_row + luis_row
    export(store, campaign_id, ExportKind.RECORDINGS, tmp_path / "rec.csv")
    assert _read(tmp_path / "rec.csv") == CALL_HEADER + ana_row


def test_call_export_july_2026_layout(store: Store, phone: tuple[int, list[str]], tmp_path: Path) -> None:
    campaign_id, _ = phone
    export(store, campaign_id, ExportKind.CALLS, tmp_path / "calls.csv", layout="2026-07")
    lines = _read(tmp_path / "calls.csv").split("\r\n")
    assert lines[0].startswith("campaign_name,campaign_date,id,number_to,contact_name,type,status,answered_by,")
    assert ",ended_at,ended_by,ended_reason,duration,billed_duration," in lines[0]
    assert ",2026-01-05 09:02:15,user,user_hangup,02:06,02:06," in lines[1]
    assert ",2026-01-05 09:00:05,,,00:00,00:00,," in lines[2]


def test_raw_turns_off_the_formula_guard_but_never_touches_numbers(
    store: Store, phone: tuple[int, list[str]], tmp_path: Path
) -> None:
    campaign_id, _ = phone
    export(store, campaign_id, ExportKind.CONTACTS, tmp_path / "raw.csv", guard=False)
    text = _read(tmp_path / "raw.csv")
    assert ",=SUM(A1)," in text and "'=SUM" not in text
    assert "+525500000001" in text and "'+52" not in _read(tmp_path / "raw.csv")


def test_parquet_holds_the_same_cells_as_the_csv(store: Store, phone: tuple[int, list[str]], tmp_path: Path) -> None:
    campaign_id, _ = phone
    for kind in (ExportKind.CONTACTS, ExportKind.CALLS):
        # Parquet is for programs, not spreadsheets: it holds the raw cells (no formula guard).
        export(store, campaign_id, kind, tmp_path / "x.csv", guard=False)
        export(store, campaign_id, kind, tmp_path / "x.parquet", fmt="parquet", guard=False)
        with open(tmp_path / "x.csv", encoding="utf-8", newline="") as handle:
            from_csv = list(csv.reader(handle))
        table = pq.read_table(tmp_path / "x.parquet")
        assert table.column_names == from_csv[0]
        assert [list(row.values()) for row in table.to_pylist()] == from_csv[1:]


def test_round_trip_matches_the_store(store: Store, phone: tuple[int, list[str]], tmp_path: Path) -> None:
    campaign_id, _ = phone
    export(store, campaign_id, ExportKind.CONTACTS, tmp_path / "c.csv", guard=False)
    with open(tmp_path / "c.csv", encoding="utf-8", newline="") as handle:
        rows = {row["contact"]: row for row in csv.DictReader(handle)}
    with store.tx() as tx:
        for record in tx.all_contacts(campaign_id):
            row = rows[record.contact]
            assert row["name"] == record.name and row["context"] == record.context
            assert row["status"] == record.state.status.value
            assert int(row["calls"]) == record.state.calls
            assert parse_duration(row["billed_duration"]) == record.state.billed_seconds
            assert row["promise"] == str("promise" in record.state.tags)
            assert row["email"] == record.state.extracted.get("email", "")


def test_phone_campaign_has_no_sendout(store: Store, phone: tuple[int, list[str]], tmp_path: Path) -> None:
    with pytest.raises(ExportNotAvailable):
        export(store, phone[0], ExportKind.SENDOUT, tmp_path / "s.csv")


def test_sendout_export_golden(store: Store, tmp_path: Path) -> None:
    campaign_id, engine = _setup(
        store,
        "whatsapp",
        [StartResult("wamid.1"), StartResult(None, "131026", "Message Undeliverable.")],
        template="t1",
    )
    events = [
        ProviderEvent("scripted", "wamid.1", "sent", _at(1), subject="message"),
        ProviderEvent("scripted", "wamid.1", "read", _at(60.5), subject="message"),
        ProviderEvent("scripted", "wamid.1", "delivered", _at(2.25), subject="message"),
        ProviderEvent(
            "scripted",
            "in.1",
            "reply",
            _at(120),
            ref="wamid.1",
            subject="message",
            data={
                "id": "b1",
                "name": "Sí, pagaré",
                "accepted": True,
                "tags": ["promise"],
                "extracted": {"email": "a@x.mx"},
            },
        ),
        ProviderEvent(
            "scripted",
            "click.1",
            "link_click",
            _at(130),
            ref="wamid.1",
            subject="message",
            data={"id": "l1", "name": "Pagar"},
        ),
    ]
    with store.tx() as tx:
        engine.ingest(tx, events, _at(200))
        business = tx.connection.execute(select(t.businesses.c.public_id)).scalar_one()
        sendout = tx.connection.execute(select(t.sendouts.c.public_id)).scalar_one()
        sessions = tx.connection.execute(select(t.messages.c.session_id).order_by(t.messages.c.id)).scalars().all()
        statuses = tx.status_counts(campaign_id)
    assert statuses == {"converted": 1, "failed": 1}
    export(store, campaign_id, ExportKind.SENDOUT, tmp_path / "s.csv")
    expected = (
        "customer_external_id,business_id,campaign_name,sendout_id,cnt_session_id,sent_at,delivered_at,read_at,"
        "opt_out_at,error_code,error_msg,button_clicks,link_clicks,input_variables,output_variables\r\n"
        f"A-1,{business},Golden,{sendout},{sessions[0]},2026-01-05 15:00:01.000000,2026-01-05 15:00:02.250000,"
        '2026-01-05 15:01:00.500000,,,,"[{""id"":""b1"",""name"":""Sí, pagaré"",""ts"":""2026-01-05 15:02:00.000000""}]",'
        '"[{""id"":""l1"",""name"":""Pagar"",""ts"":""2026-01-05 15:02:10.000000""}]",'
        '"{""name"":""Ana, \\""la jefa\\""""}","{""email"":""a@x.mx""}"\r\n'
        f"+525500000002,{business},Golden,{sendout},{sessions[1]},,,,,131026,Message Undeliverable.,,,"
        '"{""name"":""Luis""}",\r\n'
    )
    assert _read(tmp_path / "s.csv") == expected
    export(store, campaign_id, ExportKind.CONTACTS, tmp_path / "c.csv")
    lines = _read(tmp_path / "c.csv").split("\r\n")
    # WhatsApp contact exports leave calls and billed_duration empty.
    assert lines[1] == (
        'Golden,2026-01-05,A-1,+525500000001,"Ana, ""la jefa""",\'=SUM(A1),converted,0,,,2026-01-05 09:03:20,'
        "False,True,False,a@x.mx,"
    )


def test_exports_stream_to_standard_output(
    store: Store, phone: tuple[int, list[str]], capfd: pytest.CaptureFixture[str]
) -> None:
    export(store, phone[0], ExportKind.CONTACTS, "-")
    out = capfd.readouterr().out
    assert out.replace("\r\n", "\n").startswith(CONTACT_HEADER.replace("\r\n", "\n"))
    assert io.StringIO(out).read().count("Golden") == 2


def test_recording_urls_start_with_herald_public_url(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SPEC §11: HERALD_PUBLIC_URL is the base of every recording URL (a worker applying a provider's report).
    monkeypatch.setenv("HERALD_PUBLIC_URL", "https://herald.example.com/")
    campaign_id, engine = _setup(store, "phone_call", [StartResult("p1"), StartResult("p2")])
    ended = {"answered_by": "human", "ended_by": "user", "recording": True}
    with store.tx() as tx:
        events = [
            ProviderEvent("scripted", "p1", "in-progress", _at(10), data={"answered_by": "human"}),
            ProviderEvent("scripted", "p1", "ended", _at(60), data=ended),
        ]
        engine.ingest(tx, events, _at(90))
        ana = tx.connection.execute(select(t.calls.c.public_id).order_by(t.calls.c.id)).scalars().first()
    export(store, campaign_id, ExportKind.RECORDINGS, tmp_path / "rec.csv")
    assert f",https://herald.example.com/api/v1.0/call/{ana}/recording," in _read(tmp_path / "rec.csv")
