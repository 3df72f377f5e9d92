"""The outbound plumbing Herald's HTTP provider adapters share: one keep-alive client and one thread pool per
adapter, requests of a batch sent concurrently, and failures that never carry a credential into exports or logs.

An adapter may ask for `KeepAlive` instead of httpx for its JSON posts: keep-alive connections of the standard
library's `http.client`, one per thread. Per request it costs about a third of httpx's CPU (~0.3 ms against ~0.9 ms
on the benchmark machine, benchmarks/README.md "Live dispatch"), which is most of a worker's CPU per start.

What differs between providers (the request, the answer's classification, what a lost answer means) stays in each
adapter; this module holds only what is the same for all of them.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, Self, TypeVar
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


class Answer(Protocol):
    """What adapters read of a provider's answer: an httpx.Response or a KeepAlive `Reply`."""

    @property
    def status_code(self) -> int: ...

    @property
    def reason_phrase(self) -> str: ...

    @property
    def text(self) -> str: ...

    def json(self) -> Any: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A provider's answer read by `KeepAlive`."""

    status_code: int
    reason_phrase: str
    content: bytes

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON; ValueError when it is not JSON."""
        return json.loads(self.content)


class KeepAlive:
    """Keep-alive HTTP/1.1 connections to one origin, one per thread, on the standard library. Thread-safe.

    Built only where no proxy applies to the origin (`usable`): httpx honours `HTTP(S)_PROXY`, http.client does not.
    TLS is httpx's own context (certifi's roots, `SSL_CERT_FILE`), so both clients trust the same servers.
    """

    def __init__(self, base_url: str, timeout_seconds: float) -> None:
        parts = urlsplit(base_url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout_seconds
        self._context = httpx.create_ssl_context() if self._https else None
        self._local = threading.local()
        self._lock = threading.Lock()
        self._open: set[http.client.HTTPConnection] = set()

    @staticmethod
    def usable(base_url: str) -> bool:
        """True when `base_url` is reached directly (no proxy from the environment applies to it)."""
        parts = urlsplit(base_url)
        proxies = urllib.request.getproxies()
        if not (proxies.get(parts.scheme) or proxies.get("all")):
            return True
        return bool(urllib.request.proxy_bypass(parts.hostname or ""))

    def _connect(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=self._context
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        with self._lock:
            self._open.add(connection)
        return connection

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        with self._lock:
            self._open.discard(connection)
        if getattr(self._local, "connection", None) is connection:
            self._local.connection = None

    def post(self, path: str, body: bytes, headers: Mapping[str, str]) -> Reply:
        """POST `body` to `path` of the origin; raises OSError / http.client.HTTPException when no answer came,
        UnicodeEncodeError for a header value that is not ASCII (as httpx does).

        A kept connection the server closed meanwhile is replaced before use; one that fails before any answer
        is read is replaced and the request sent once more. Only for requests that carry an idempotency key.
        """
        fields = {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
        for value in fields.values():
            value.encode("ascii")
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and _closed_by_peer(connection):
            self._drop(connection)
            connection = None
        reused = connection is not None
        if connection is None:
            connection = self._local.connection = self._connect()
        try:
            connection.request("POST", self._prefix + path, body, fields)
            response = connection.getresponse()
            content = response.read()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            self._drop(connection)
            if not reused:
                raise
            # The server closed a kept connection as the request went out: the usual race of keep-alive.
            return self.post(path, body, headers)
        except BaseException:
            self._drop(connection)
            raise
        if response.will_close:
            self._drop(connection)
        return Reply(response.status, response.reason, content)

    def close(self) -> None:
        """Close every connection of every thread."""
        with self._lock:
            connections, self._open = list(self._open), set()
        for connection in connections:
            connection.close()


def _closed_by_peer(connection: http.client.HTTPConnection) -> bool:
    """True when an idle kept connection has something to read: the server closed it (or broke the protocol)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def response_json(response: Answer) -> Any:
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

    def __init__(
        self,
        base_url: str,
        timeout_seconds: float,
        max_concurrency: int,
        thread_name: str,
        *,
        keep_alive: bool = False,
    ) -> None:
        self._host = urlsplit(base_url).hostname or ""
        self._timeout_seconds = timeout_seconds
        #: `_post_json` to `base_url` goes through the standard library when asked for and no proxy applies.
        self._keep_alive = KeepAlive(base_url, timeout_seconds) if keep_alive and KeepAlive.usable(base_url) else None
        self._base_url = base_url.rstrip("/")
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
        if self._keep_alive is not None:
            self._keep_alive.close()

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

    def _post_kept(self, url: str, body: Any, headers: Mapping[str, str], credential: str) -> Answer | StartResult:
        """`_post_json`, through `KeepAlive` when the adapter asked for it (same bytes out, same failures)."""
        if self._keep_alive is None or not url.startswith(self._base_url + "/"):
            return self._post_json(url, body, headers, credential)
        path = url[len(self._base_url) :]
        # As httpx encodes `json=`, so a backend sees the same bytes from either client.
        content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
        try:
            return self._keep_alive.post(path, content, headers)
        except TimeoutError:
            return StartResult.retryable("timeout", f"no answer from {self._host} in {self._timeout_seconds}s")
        except (ConnectionRefusedError, socket.gaierror):
            return StartResult.retryable("connect_error", f"could not connect to {self._host}")
        except UnicodeEncodeError:
            return StartResult.retryable("config_error", f"{credential} is not ASCII text")
        except (OSError, http.client.HTTPException) as error:
            return StartResult.retryable("network_error", f"{type(error).__name__} talking to {self._host}")
