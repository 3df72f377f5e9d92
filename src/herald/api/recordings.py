"""A provider's recording, fetched with the provider's credentials and streamed to Herald's authorised client.

Providers whose recording URLs need credentials (Twilio: Basic auth with the account) name a `recording_auth` hook
in the registry; their recordings are proxied, so the client never sees nor needs the credentials. Other providers'
recordings stay a redirect to their URL.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx
from fastapi.responses import StreamingResponse

from herald.api.errors import ApiError
from herald.providers import registry

#: Seconds to connect to the provider and between two chunks of the recording.
TIMEOUT = 30.0
_CHUNK = 64 * 1024
_PASSED_HEADERS = ("content-type", "content-length", "content-disposition")


def credentials(provider: str, provider_options: Mapping[str, Any], url: str) -> httpx.Auth | None:
    """What fetching `url` needs from the campaign's provider options; None when the provider needs nothing (or the
    URL is not its own: then nothing is sent)."""
    try:
        spec = registry.spec(provider)
    except registry.UnknownProvider:
        return None
    if spec.recording_auth is None:
        return None
    try:
        auth: httpx.Auth | None = spec.recording_credentials(registry.validate_options(provider, provider_options), url)
    except (registry.ProviderOptionsError, KeyError):
        # Which variable or option is wrong is the operator's business (`herald doctor` says), not the client's.
        raise ApiError(503, "RECORDING_UNAVAILABLE", "the provider's credentials are not configured") from None
    return auth


def stream(url: str, auth: httpx.Auth) -> StreamingResponse:
    """The recording at `url`, fetched with `auth` and passed on chunk by chunk (memory does not grow with it).

    Redirects are followed (httpx drops the credentials when one leaves the provider's origin); a provider that does
    not answer 200 is a 502 that says only its status."""
    client = httpx.Client(timeout=TIMEOUT, follow_redirects=True)
    try:
        upstream = client.send(client.build_request("GET", url), auth=auth, stream=True)
    except httpx.HTTPError as error:
        client.close()
        raise ApiError(502, "RECORDING_UNAVAILABLE", f"the provider did not answer ({type(error).__name__})") from None
    if upstream.status_code != 200:
        upstream.close()
        client.close()
        raise ApiError(502, "RECORDING_UNAVAILABLE", f"the provider answered HTTP {upstream.status_code}")

    def body() -> Iterator[bytes]:
        try:
            yield from upstream.iter_bytes(_CHUNK)
        finally:
            upstream.close()
            client.close()

    headers = {name: upstream.headers[name] for name in _PASSED_HEADERS if name in upstream.headers}
    media_type = headers.pop("content-type", "application/octet-stream")
    return StreamingResponse(body(), media_type=media_type, headers=headers)
