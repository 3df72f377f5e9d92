"""Tracked links, the pure part (SPEC §7.5): token format, which URLs are tracked, the rewriting of a message's
variables, and the campaign's `links:` validation."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from herald.domain import links as tracking
from herald.domain.campaign import ConfigError, parse_campaign
from herald.domain.links import LinkSpec

WHATSAPP = {"name": "Links", "channel": "whatsapp", "template": "t"}
BASE = "https://herald.example.org"

raw_tokens = st.binary(min_size=tracking.TOKEN_BYTES, max_size=tracking.TOKEN_BYTES)
ids = st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True)
web_urls = st.builds(
    lambda scheme, host, path: f"{scheme}://{host}.example/{path}",
    st.sampled_from(["http", "https"]),
    st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True),
    st.from_regex(r"[A-Za-z0-9/?=&%._~-]{0,30}", fullmatch=True),
)
values = st.text(max_size=40) | web_urls | st.builds(lambda i: "see {link:" + i + "}", ids)


@given(raw_tokens)
def test_a_token_is_32_url_safe_characters_that_keep_every_random_bit(raw: bytes) -> None:
    token = tracking.new_token(lambda size: raw)
    assert len(token) == tracking.TOKEN_LENGTH and tracking.is_token(token)
    assert base64.urlsafe_b64decode(token) == raw  # nothing lost: 192 bits
    assert tracking.tracked_url(BASE + "/", token) == f"{BASE}/l/{token}"


@given(raw_tokens, raw_tokens)
def test_distinct_bytes_give_distinct_tokens(one: bytes, two: bytes) -> None:
    assert (tracking.new_token(lambda _: one) == tracking.new_token(lambda _: two)) == (one == two)


@given(st.text(max_size=60))
def test_is_token_accepts_only_the_token_shape(text: str) -> None:
    expected = len(text) == 32 and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in text)
    assert tracking.is_token(text) == expected


def test_too_few_random_bytes_are_refused() -> None:
    with pytest.raises(ValueError, match="24 random bytes"):
        tracking.new_token(lambda size: b"\x00" * (size - 1))


@given(st.text(max_size=100))
def test_a_web_url_is_http_or_https_with_a_host(text: str) -> None:
    if tracking.is_web_url(text):
        scheme, _, rest = text.partition("://")
        assert scheme in ("http", "https") and rest and not any(ch.isspace() for ch in text)


@pytest.mark.parametrize(
    "text",
    ["javascript:alert(1)", "//evil.example", "/relative", "data:text/html,x", "https://", "https://a b.example",
     "http://host\n.example", "ftp://files.example", "https://[::1"],
)  # fmt: skip
def test_what_is_not_a_web_url(text: str) -> None:
    assert not tracking.is_web_url(text)


link_lists = st.lists(
    st.builds(
        lambda i, var, url, carries: LinkSpec(i, f"name {i}", var or i, url, carries),
        ids,
        st.none() | ids,
        st.none() | web_urls,
        st.sampled_from(["url", "token"]),
    ),
    max_size=4,
    unique_by=(lambda link: link.id, lambda link: link.variable),
)


@given(link_lists, st.dictionaries(ids, values, max_size=6))
def test_rewriting_puts_each_tracked_url_in_its_variable_and_its_placeholders(
    links: list[LinkSpec], variables: dict[str, str]
) -> None:
    found = tracking.targets(links, variables)
    tracked = {target.link.id: (target.link, f"{index:032d}") for index, target in enumerate(found)}
    result = tracking.rewrite(variables, tracked, BASE + "/")
    carried = {link.variable for link, _ in tracked.values()}
    for link, token in tracked.values():
        assert result[link.variable] == (token if link.carries == "token" else f"{BASE}/l/{token}")
    for key, value in variables.items():
        if key in carried:
            continue
        expected = value
        for link_id, (_, token) in tracked.items():
            expected = expected.replace("{link:" + link_id + "}", f"{BASE}/l/{token}")
        assert result[key] == expected  # placeholders of untracked links, and all other text, are left alone
    assert set(result) == set(variables) | carried
    # Which links are tracked: a fixed URL always, a per-contact one when the contact's value is a web URL.
    for link in links:
        own = variables.get(link.variable, "")
        assert (link.id in tracked) == (link.url is not None or tracking.is_web_url(own.strip()))
        if link.id in tracked and link.url is None:
            assert next(t.url for t in found if t.link.id == link.id) == own.strip()


def _problems(links: Any, channel: str = "whatsapp") -> str:
    data = {**WHATSAPP, "links": links} if channel == "whatsapp" else {"name": "x", "channel": channel, "links": links}
    with pytest.raises(ConfigError) as caught:
        parse_campaign(data)
    return str(caught.value)


def test_links_config_defaults_and_order() -> None:
    config = parse_campaign({**WHATSAPP, "links": [{"id": "offer", "url": "https://s.example/o"}, {"id": "pay"}]})
    assert config.tracked_links == (
        LinkSpec("offer", "offer", "offer", "https://s.example/o"),
        LinkSpec("pay", "pay", "pay", None),
    )
    assert parse_campaign(WHATSAPP).tracked_links == ()


@pytest.mark.parametrize(
    ("links", "expected"),
    [
        ([{"id": "a b"}], "links.0.id: String should match pattern"),
        ([{"id": "x", "url": "javascript:alert(1)"}], "links.0.url: Value error, must be an absolute http"),
        ([{"id": "x", "url": "/relative"}], "links.0.url"),
        ([{"id": "a"}, {"id": "a", "url": "https://s.example"}], "two links have the same id: a"),
        ([{"id": "a", "variable": "v"}, {"id": "b", "variable": "v"}], "two links have the same variable: v"),
        ([{"id": "a"}, {"id": "b", "variable": "a"}], "two links have the same variable: a"),
        ([{"id": "a", "href": "https://s.example"}], "links.0.href: Extra inputs are not permitted"),
        ([{"name": "no id"}], "links.0.id: Field required"),
        ([{"id": "a", "carries": "path"}], "links.0.carries: Input should be 'url' or 'token'"),
    ],
)
def test_bad_links_are_refused_by_name(links: Any, expected: str) -> None:
    assert expected in _problems(links)


def test_links_are_whatsapp_only() -> None:
    assert "links cannot be set on a phone_call campaign" in _problems([{"id": "a"}], channel="phone_call")
