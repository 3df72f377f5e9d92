"""The outbound plumbing Herald's HTTP provider adapters share: one keep-alive client and one thread pool per
adapter, requests of a batch sent concurrently, and failures that never carry a credential into exports or logs.

What differs between providers (the request, the answer's classification, what a lost answer means) stays in each
adapter; this module holds only what is the same for all of them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import httpx

from herald.providers.base import StartResult

#: Requests of one batch in flight at once per adapter, unless the adapter says otherwise.
MAX_CONCURRENCY = 16
#: Longest provider message kept in a StartResult (they end up in exports and logs).
MAX_MESSAGE = 500

_Request = TypeVar("_Request")
_Credentials = TypeVar("_Credentials")


def redact(text: str, secret: str) -> str:
    """`text` fit for a StartResult: `secret` replaced by `***`, whitespace collapsed, at most MAX_MESSAGE long.

    A provider that echoes the request back must not leak a credential into exports or logs. (A secret under 8
    characters is no secret worth the mangled messages its redaction would cause: "wrong" in "wrong token".)
    """
    if len(secret) >= 8:
        text = text.replace(secret, "***")
    return " ".join(text.split())[:MAX_MESSAGE]


def response_json(response: httpx.Response) -> Any:
    """A provider's answer as JSON, or None when its body is not JSON (a proxy's error page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None


def says_later(status: int) -> bool:
    """True for an HTTP status that says "try later", not "no": 408 (a timeout the server reports), 429 and 5xx."""
    return status in (408, 429) or status >= 500


class PooledOutbound:
    """Base of an outbound adapter that sends one HTTP request per attempt over a pooled client. Thread-safe; call
    `close()` (or use it as a context manager) when done."""

    def __init__(self, base_url: str, timeout_seconds: float, max_concurrency: int, thread_name: str) -> None:
        self._host = urlsplit(base_url).hostname or ""
        self._timeout_seconds = timeout_seconds
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
            follow_redirects=False,
        )
        self._pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix=thread_name)

    def close(self) -> None:
        """Close the connections and the thread pool."""
        self._pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _start_all(
        self,
        requests: Sequence[_Request],
        credentials: Callable[[], _Credentials],
        start: Callable[[_Request, _Credentials], StartResult],
    ) -> list[StartResult]:
        """`start` each request with the resolved `credentials`, concurrently; one result per request, in order.

        `credentials` raises KeyError for a missing `env:` variable: then every request is retryable `config_error`,
        since fixing the environment fixes every attempt, so they wait for it instead of failing contacts.
        """
        if not requests:
            return []
        try:
            resolved = credentials()
        except KeyError as error:
            return [StartResult.retryable("config_error", str(error.args[0]))] * len(requests)
        if len(requests) == 1:
            return [start(requests[0], resolved)]
        return list(self._pool.map(lambda request: start(request, resolved), requests))

    def _post_json(
        self, url: str, body: Any, headers: Mapping[str, str], credential: str
    ) -> httpx.Response | StartResult:
        """POST `body` as JSON; the response, or a retryable StartResult for a request that got no answer.

        Only for idempotent requests (or ones a lost answer cannot duplicate): any network failure is "try later".
        `credential` names the option a non-ASCII header value came from.
        """
        try:
            return self._client.post(url, json=body, headers=headers)
        except httpx.TimeoutException:
            return StartResult.retryable("timeout", f"no answer from {self._host} in {self._timeout_seconds}s")
        except httpx.ConnectError:
            return StartResult.retryable("connect_error", f"could not connect to {self._host}")
        except httpx.RequestError as error:
            return StartResult.retryable("network_error", f"{type(error).__name__} talking to {self._host}")
        except UnicodeEncodeError:
            # Header values must be ASCII; the error would quote the credential, so it is not kept.
            return StartResult.retryable("config_error", f"{credential} is not ASCII text")
