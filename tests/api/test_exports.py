"""`/campaigns/{id}/exports/{kind}` and `/campaigns/{id}/analytics`: the files of `herald export`, over HTTP."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import update

from herald.demo import simulate_campaign
from herald.domain.statuses import Channel
from herald.exports.formats import available, export
from herald.exports.kinds import ExportKind
from herald.store import schema as t

from .conftest import BASE, Api


def _simulated(api: Api, channel: Channel, contacts: int = 30) -> int:
    campaign_id, *_ = simulate_campaign(api.store, channel, contacts, seed=3)
    with api.store.tx() as tx:
        tx.connection.execute(
            update(t.campaigns).where(t.campaigns.c.id == campaign_id).values(business_id=api.acme.business_id)
        )
    return campaign_id


@pytest.fixture
def phone(api: Api) -> Iterator[int]:
    yield _simulated(api, Channel.PHONE_CALL)


def test_every_export_is_byte_for_byte_the_file_herald_export_writes(api: Api, phone: int, tmp_path: Path) -> None:
    with api.store.read() as tx:
        kinds = available(tx.campaign(phone))
    assert ExportKind.CALLS in kinds
    for kind in kinds:
        for params, options in (
            ({}, {}),
            ({"raw": "true"}, {"guard": False}),
            ({"layout": "2026-07"}, {"layout": "2026-07"}),
        ):
            expected = tmp_path / f"{kind}.csv"
            export(api.store, phone, kind, expected, **options)  # type: ignore[arg-type]
            response = api.client.get(
                f"{BASE}/campaigns/{phone}/exports/{kind}", params=params, headers=api.acme.headers
            )
            assert response.status_code == 200, response.text
            assert response.headers["content-type"].startswith("text/csv")
            assert f"campaign-{phone}-{kind}.csv" in response.headers["content-disposition"]
            assert response.content == expected.read_bytes(), (kind, params)


def test_parquet_has_the_same_rows(api: Api, phone: int, tmp_path: Path) -> None:
    response = api.client.get(
        f"{BASE}/campaigns/{phone}/exports/calls", params={"format": "parquet"}, headers=api.acme.headers
    )
    assert response.status_code == 200
    table = pq.read_table(io.BytesIO(response.content))
    expected = tmp_path / "calls.parquet"
    export(api.store, phone, ExportKind.CALLS, expected, fmt="parquet")
    assert table.equals(pq.read_table(expected))
    assert table.num_rows > 0


def test_another_business_and_bad_requests_get_the_error_envelope(api: Api, phone: int) -> None:
    for path in ("exports/contacts", "analytics"):
        theirs = api.client.get(f"{BASE}/campaigns/{phone}/{path}", headers=api.globex.headers)
        assert theirs.status_code == 404 and theirs.json()["error"] == "NOT_FOUND"
        missing = api.client.get(f"{BASE}/campaigns/999999/{path}", headers=api.acme.headers)
        assert missing.status_code == 404 and missing.json() == theirs.json()
    assert api.client.get(f"{BASE}/campaigns/{phone}/exports/sendout", headers=api.acme.headers).status_code == 404
    for bad in ("exports/nope", "exports/calls?format=xlsx", "exports/calls?layout=1999"):
        response = api.client.get(f"{BASE}/campaigns/{phone}/{bad}", headers=api.acme.headers)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["error"] == "INVALID_REQUEST"
    for huge in ("99999999999999999999999", "-1", "0", "abc"):
        response = api.client.get(f"{BASE}/campaigns/{huge}/analytics", headers=api.acme.headers)
        assert response.status_code == 400, (huge, response.text)


def test_analytics_are_the_numbers_of_herald_analyze(api: Api, phone: int) -> None:
    response = api.client.get(f"{BASE}/campaigns/{phone}/analytics", headers=api.acme.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["campaign_id"] == phone
    with api.store.read() as tx:
        kinds = {kind.value for kind in available(tx.campaign(phone))}
    assert set(body["exports"]) == kinds
    contacts = body["exports"]["contacts"]
    assert contacts["contacts"] == 30
    assert sum(contacts["status_counts"].values()) == 30


def test_a_whatsapp_campaign_has_its_sendout_export(api: Api, tmp_path: Path) -> None:
    campaign_id = _simulated(api, Channel.WHATSAPP, contacts=10)
    response = api.client.get(f"{BASE}/campaigns/{campaign_id}/exports/sendout", headers=api.acme.headers)
    assert response.status_code == 200
    export(api.store, campaign_id, ExportKind.SENDOUT, tmp_path / "sendout.csv")
    assert response.content == (tmp_path / "sendout.csv").read_bytes()
    assert response.text.count("\r\n") > 10  # the header and at least one row per contact
    calls = api.client.get(f"{BASE}/campaigns/{campaign_id}/exports/calls", headers=api.acme.headers)
    assert calls.status_code == 404 and "no calls export" in calls.json()["message"]
