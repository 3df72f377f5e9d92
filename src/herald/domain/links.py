"""Tracked links (SPEC §7.5): which URLs of a message are tracked, the tokens that stand for them, and the rewriting
of a message's variables. Pure: no I/O, no clock, no randomness of its own (the caller passes the random bytes).

A campaign's `links:` names each tracked link (`id`, `name`) and where its URL goes in the template's variables.
When a message is sent, every tracked URL is replaced by `{HERALD_PUBLIC_URL}/l/{token}`; the token is the only
thing the redirect receives, so the target always comes from the store, never from the request.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

#: Random bytes per token: 192 bits, far beyond guessing (the brief asks for at least 128).
TOKEN_BYTES = 24
#: A token is the URL-safe base64 text of its bytes, without padding: 32 characters.
TOKEN_LENGTH = 32
_TOKEN = re.compile(rf"[A-Za-z0-9_-]{{{TOKEN_LENGTH}}}")
#: `{link:ID}` in a variable's text stands for the tracked URL of link ID.
_PLACEHOLDER = re.compile(r"\{link:([A-Za-z0-9_.-]{1,64})\}")
#: A link id (also the default variable name): letters, digits, `_`, `.`, `-`.
LINK_ID = r"^[A-Za-z0-9_.-]{1,64}$"
#: Longest target kept (browsers and proxies refuse much longer URLs anyway).
MAX_URL = 2048
#: Where the redirect is served, under Herald's public URL.
PATH = "/l/"


def new_token(random_bytes: Callable[[int], bytes]) -> str:
    """A token from `random_bytes(TOKEN_BYTES)` (pass `secrets.token_bytes`)."""
    raw = random_bytes(TOKEN_BYTES)
    if len(raw) != TOKEN_BYTES:
        raise ValueError(f"a token needs {TOKEN_BYTES} random bytes, got {len(raw)}")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def is_token(text: str) -> bool:
    """True when `text` has the shape of a token (checked before any database read)."""
    return _TOKEN.fullmatch(text) is not None


def tracked_url(base_url: str, token: str) -> str:
    """The public URL that stands for one tracked link of one message."""
    return base_url.rstrip("/") + PATH + token


def is_web_url(text: str) -> bool:
    """True for an absolute http(s) URL with a host and no spaces or control characters: the only targets a
    redirect may send a browser to."""
    if not text or len(text) > MAX_URL or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        return False
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(host)


@dataclass(frozen=True, slots=True)
class LinkSpec:
    """One tracked link of a campaign: its id and name (the `link_clicks` entry), the template variable that carries
    it, its fixed target (None: the target is the contact's own value of `variable`), and what the variable gets."""

    id: str
    name: str
    variable: str
    url: str | None = None
    #: What the variable receives: the tracked URL, or only its token (for a WhatsApp URL button whose approved
    #: URL is `{HERALD_PUBLIC_URL}/l/{{1}}`: the template fixes the base, the message gives the suffix).
    carries: Literal["url", "token"] = "url"


@dataclass(frozen=True, slots=True)
class Target:
    """A link to track in one message, and where it leads."""

    link: LinkSpec
    url: str


def targets(links: Sequence[LinkSpec], variables: Mapping[str, Any]) -> list[Target]:
    """The links tracked in a message with these variables, in campaign order.

    A link with a fixed `url` is always tracked. A link without one is tracked when the contact's value of its
    `variable` is an http(s) URL; otherwise that contact's message goes out with the value untouched.
    """
    found: list[Target] = []
    for link in links:
        url = link.url if link.url is not None else str(variables.get(link.variable, "")).strip()
        if is_web_url(url):
            found.append(Target(link, url))
    return found


def rewrite(variables: Mapping[str, Any], tracked: Mapping[str, tuple[LinkSpec, str]], base_url: str) -> dict[str, Any]:
    """The variables a provider receives: each tracked link's variable set to its tracked URL (or to the bare token,
    for a link that `carries: token`), and every `{link:ID}` of a tracked link replaced by its tracked URL in any
    other variable's text.

    `tracked` maps a link id to its spec and token. A placeholder of a link not tracked here is left as it is.
    """
    result = dict(variables)
    urls = {link_id: tracked_url(base_url, token) for link_id, (_, token) in tracked.items()}
    for link_id, (link, token) in tracked.items():
        result[link.variable] = token if link.carries == "token" else urls[link_id]

    def fill(match: re.Match[str]) -> str:
        return urls.get(match.group(1), match.group(0))

    # Placeholders are filled in the contact's own values only: a tracked URL or token never contains one.
    carried = {link.variable for link, _ in tracked.values()}
    for key, value in result.items():
        if key not in carried and isinstance(value, str) and "{link:" in value:
            result[key] = _PLACEHOLDER.sub(fill, value)
    return result
