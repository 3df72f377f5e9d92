"""The one Jinja2 environment of the web console (autoescape on for every template) and how pages are rendered.

Every page gets `user` (the signed-in `WebUser`, or None), `csrf_token` (for the hidden field of its forms), and the
globals `static_url(name)` and `plotly_url` (plotly.js served once by `herald.web.assets`).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from herald.web import assets

environment = Environment(
    loader=PackageLoader("herald.web", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a misspelt name fails the page's test instead of rendering blank
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.globals["static_url"] = assets.static_url
environment.globals["plotly_url"] = assets.PLOTLY_URL


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """The HTML page `template` with `context`, plus the signed-in user and the CSRF token of this request."""
    user = getattr(request.state, "web_user", None)
    page = environment.get_template(template).render(
        request=request,
        user=user,
        csrf_token=context.pop("csrf_token", None) or (user.csrf_token if user is not None else ""),
        **context,
    )
    return HTMLResponse(page, status_code=status_code, headers=PAGE_HEADERS)


#: Every page: never cached (they show live numbers and carry CSRF tokens), never framed by another site
#: (clickjacking), no MIME sniffing, and no full URL sent to other sites.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
