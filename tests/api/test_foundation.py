"""Keys, business scoping and error shapes common to every REST route (agents are the simplest resource)."""

from __future__ import annotations

import pytest

from herald.engine.clock import RealClock
from herald.store.tenancy import api_keys, revoke_key

from .conftest import BASE, Api


@pytest.mark.parametrize(
    "header",
    [None, "", "api-key", "Bearer hk_x", "api-key hk_not-a-key", "apikey hk_x"],
)
def test_a_missing_malformed_or_unknown_key_is_a_401_with_the_reference_error_body(
    api: Api, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = api.client.get(f"{BASE}/agents", headers=headers)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == 401 and isinstance(body["message"], str) and body["message"]


def test_a_revoked_key_is_refused_from_the_next_request(api: Api) -> None:
    assert api.client.get(f"{BASE}/agents", headers=api.acme.headers).status_code == 200
    with api.store.tx() as tx:
        key = api_keys(tx, api.acme.business_id)[0]
        assert revoke_key(tx, key.prefix, RealClock().now())
    assert api.client.get(f"{BASE}/agents", headers=api.acme.headers).status_code == 401
    assert api.client.get(f"{BASE}/agents", headers=api.globex.headers).status_code == 200


def test_the_scheme_is_case_insensitive(api: Api) -> None:
    headers = {"Authorization": f"API-KEY {api.acme.key}"}
    assert api.client.get(f"{BASE}/agents", headers=headers).status_code == 200


def test_every_new_business_has_a_ready_agent_with_simulator_integrations_and_sees_only_its_own(api: Api) -> None:
    mine = api.client.get(f"{BASE}/agents", headers=api.acme.headers).json()["agents"]
    theirs = api.client.get(f"{BASE}/agents", headers=api.globex.headers).json()["agents"]
    assert len(mine) == len(theirs) == 1
    assert mine[0]["public_id"] != theirs[0]["public_id"]
    kinds = sorted((i["integration_type"], i["provider"], i["public_id"][:4]) for i in mine[0]["integrations"])
    assert kinds == [("phone_call", "simulator", "iph_"), ("whatsapp", "simulator", "iwa_")]

    created = api.client.post(
        f"{BASE}/agents",
        headers=api.acme.headers,
        json={"name": "Cobranza", "tags": ["promesa"], "conversion": {"tag": "promesa"}},
    )
    assert created.status_code == 201, created.text
    agent = created.json()["agent"]
    assert agent["name"] == "Cobranza" and agent["integrations"] == []
    assert [a["name"] for a in api.client.get(f"{BASE}/agents", headers=api.acme.headers).json()["agents"]] == [
        "Herald simulator agent",
        "Cobranza",
    ]
    assert len(api.client.get(f"{BASE}/agents", headers=api.globex.headers).json()["agents"]) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "tags": ["a", "a"]}, "body"),
        ({"name": "x", "colour": "red"}, "colour"),
        ({"name": "x", "conversion": {"tag": "missing"}}, "body"),
        ([1, 2], "body"),
    ],
)
def test_an_invalid_body_is_a_400_naming_the_problem(api: Api, body: object, field: str) -> None:
    response = api.client.post(f"{BASE}/agents", headers=api.acme.headers, json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["success"] is False and error["error"] == "INVALID_REQUEST"
    assert any(p["field"] == field for p in error["errors"]), error


@pytest.mark.parametrize("raw", [b"{", b"\xff\xfe", b"null", b'{"name": "x",}', b""])
def test_malformed_json_is_a_400_never_a_500(api: Api, raw: bytes) -> None:
    headers = {**api.acme.headers, "Content-Type": "application/json"}
    response = api.client.post(f"{BASE}/agents", headers=headers, content=raw)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "INVALID_REQUEST"


def test_a_body_over_the_limit_is_a_413_and_changes_nothing(api: Api) -> None:
    from herald.api.limits import max_body_bytes

    huge = b'{"name": "' + b"x" * max_body_bytes() + b'"}'
    headers = {**api.acme.headers, "Content-Type": "application/json"}
    response = api.client.post(f"{BASE}/agents", headers=headers, content=huge)
    assert response.status_code == 413
    assert response.json()["error"] == "PAYLOAD_TOO_LARGE"

    def chunks() -> object:
        yield b'{"name": "'
        for _ in range(max_body_bytes() // 65536 + 1):
            yield b"x" * 65536
        yield b'"}'

    # Without Content-Length (chunked), the cap is enforced while the body streams in.
    response = api.client.post(f"{BASE}/agents", headers=headers, content=chunks())
    assert response.status_code == 413
    assert len(api.client.get(f"{BASE}/agents", headers=api.acme.headers).json()["agents"]) == 1


def test_unknown_routes_and_methods_answer_in_the_error_envelope(api: Api) -> None:
    missing = api.client.get(f"{BASE}/nothing-here", headers=api.acme.headers)
    assert missing.status_code == 404 and missing.json()["error"] == "NOT_FOUND"
    wrong = api.client.delete(f"{BASE}/agents", headers=api.acme.headers)
    assert wrong.status_code == 405 and wrong.json()["error"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize(
    ("method", "path", "drf"),
    [
        ("GET", "/campaigns?pageSize=abc", True),
        ("POST", "/campaigns/1/contacts", True),
        ("GET", "/campaigns/1/contacts?pageSize=0", True),
        ("GET", "/campaigns/1/calls?pageIndex=x", True),
        ("POST", "/campaigns", False),
        ("PATCH", "/campaigns/1", False),
        ("POST", "/agents", False),
    ],
)
def test_400s_take_the_shape_the_reference_gives_each_route(api: Api, method: str, path: str, drf: bool) -> None:
    headers = {**api.acme.headers, "Content-Type": "application/json"}
    response = api.client.request(method, f"{BASE}{path}", headers=headers, content=b"{not json")
    assert response.status_code == 400, response.text
    body = response.json()
    if drf:  # Django REST framework's {field: [messages]} (the reference's DRFBadRequestError)
        assert body and all(isinstance(v, list) and all(isinstance(m, str) for m in v) for v in body.values())
    else:
        assert body["success"] is False and body["error"] == "INVALID_REQUEST"
