"""`Idempotency-Key`: a replay returns the first answer and changes nothing; a different body is a 409."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from herald.store import schema as t

from .conftest import BASE, Api


def _agents(api: Api) -> list[str]:
    response = api.client.get(f"{BASE}/agents", headers=api.acme.headers)
    return [agent["name"] for agent in response.json()["agents"]]


def test_a_replay_returns_the_first_answer_and_creates_nothing(api: Api) -> None:
    headers = {**api.acme.headers, "Idempotency-Key": "order-1"}
    first = api.client.post(f"{BASE}/agents", headers=headers, json={"name": "Uno"})
    again = api.client.post(f"{BASE}/agents", headers=headers, json={"name": "Uno"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert again.headers["content-type"] == first.headers["content-type"]
    assert _agents(api).count("Uno") == 1


def test_the_same_key_with_another_body_is_a_409_and_changes_nothing(api: Api) -> None:
    headers = {**api.acme.headers, "Idempotency-Key": "order-2"}
    assert api.client.post(f"{BASE}/agents", headers=headers, json={"name": "Dos"}).status_code == 201
    reused = api.client.post(f"{BASE}/agents", headers=headers, json={"name": "Tres"})
    assert reused.status_code == 409
    assert reused.json()["error"] == "IDEMPOTENCY_KEY_REUSED"
    assert "Tres" not in _agents(api)


def test_keys_are_per_business_and_expire_after_24_hours(api: Api) -> None:
    body = {"name": "Cuatro"}
    for tenant in (api.acme, api.globex):
        response = api.client.post(f"{BASE}/agents", headers={**tenant.headers, "Idempotency-Key": "k"}, json=body)
        assert response.status_code == 201 and "idempotent-replayed" not in response.headers
    with api.store.tx() as tx:
        tx.connection.execute(update(t.idempotency_keys).values(created_at=datetime.now(UTC) - timedelta(hours=25)))
    headers = {**api.acme.headers, "Idempotency-Key": "k"}
    assert "idempotent-replayed" not in api.client.post(f"{BASE}/agents", headers=headers, json=body).headers
    assert _agents(api).count("Cuatro") == 2


def test_an_error_answer_is_replayed_too_and_a_bad_key_is_a_400(api: Api) -> None:
    headers = {**api.acme.headers, "Idempotency-Key": "bad-body"}
    first = api.client.post(f"{BASE}/agents", headers=headers, json={"name": "x", "tags": ["a", "a"]})
    again = api.client.post(f"{BASE}/agents", headers=headers, json={"name": "x", "tags": ["a", "a"]})
    assert first.status_code == again.status_code == 400 and again.json() == first.json()
    too_long = api.client.post(
        f"{BASE}/agents", headers={**api.acme.headers, "Idempotency-Key": "x" * 256}, json={"name": "x"}
    )
    assert too_long.status_code == 400 and "Idempotency-Key" in too_long.json()["message"]
    no_auth = api.client.post(f"{BASE}/agents", headers={"Idempotency-Key": "k2"}, json={"name": "x"})
    assert no_auth.status_code == 401


def test_requests_at_once_with_one_key_act_once(api: Api) -> None:
    headers = {**api.acme.headers, "Idempotency-Key": "race"}
    answers: list[int] = []
    barrier = threading.Barrier(6)

    def post() -> None:
        barrier.wait()
        answers.append(api.client.post(f"{BASE}/agents", headers=headers, json={"name": "Carrera"}).status_code)

    threads = [threading.Thread(target=post) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _agents(api).count("Carrera") == 1
    assert sorted(set(answers)) in ([201], [201, 409])


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(names=st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=8))
def test_any_sequence_of_posts_creates_one_agent_per_distinct_key(api: Api, names: list[str]) -> None:
    before = len(_agents(api))
    seen: dict[str, int] = {}
    prefix = f"seq-{before}-"
    for name in names:
        # Key = name: every repeat is a replay of its first request.
        headers = {**api.acme.headers, "Idempotency-Key": prefix + name}
        response = api.client.post(f"{BASE}/agents", headers=headers, json={"name": prefix + name})
        assert response.status_code == 201
        seen.setdefault(name, 0)
        seen[name] += 1
    assert len(_agents(api)) == before + len(seen)
