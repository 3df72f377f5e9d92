"""The REST API's shared state across `herald serve` processes: rate limits and idempotency keys hold for all of them."""

from __future__ import annotations

import json

import httpx

from .processes import Processes, processes, serve, stop

__all__ = ["processes"]


def _key(processes: Processes, business: str) -> str:
    made = processes.run("keys", "create", "--business", business, "--json")
    assert made.returncode == 0, made.stderr
    return str(json.loads(made.stdout)["key"])


def test_the_rate_limit_and_idempotency_keys_hold_across_two_serve_processes(processes: Processes) -> None:
    assert processes.run("init").returncode == 0
    key = _key(processes, "acme")
    # Two requests per key and then one per 1,000 s: the third request is refused wherever it lands, so a limit kept
    # per process (which would let each process take two) fails this, however slow the machine is.
    limits = {"HERALD_RATE_LIMIT": "0.001", "HERALD_RATE_BURST": "2"}
    first, url_a = serve(processes, **limits)
    second, url_b = serve(processes, **limits)
    headers = {"Authorization": f"api-key {key}"}
    assert httpx.get(f"{url_a}/api/v1.0/agents", headers=headers, timeout=30).status_code == 200
    assert httpx.get(f"{url_b}/api/v1.0/agents", headers=headers, timeout=30).status_code == 200
    for url in (url_a, url_b):
        refused = httpx.get(f"{url}/api/v1.0/agents", headers=headers, timeout=30)
        assert refused.status_code == 429
        assert refused.json()["error"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) > 900
    other = _key(processes, "globex")  # another key has its own allowance
    posted = []
    for url in (url_a, url_b):
        posted.append(
            httpx.post(
                f"{url}/api/v1.0/agents",
                headers={"Authorization": f"api-key {other}", "Idempotency-Key": "once"},
                json={"name": "Una vez"},
                timeout=30,
            )
        )
    assert [p.status_code for p in posted] == [201, 201]
    assert posted[1].json() == posted[0].json() and posted[1].headers["idempotent-replayed"] == "true"
    assert stop([first, second]) == [0, 0]
