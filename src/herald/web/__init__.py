"""The web console of `herald serve`: server-rendered pages (Jinja2) over the same services as the REST API.

`install(app)` adds it to the ASGI application; each page module has a `router()`. Pages work with JavaScript off;
`static/herald.js` only enhances them.
"""

from __future__ import annotations

from fastapi import FastAPI

from herald.store.queries import Store


def install(app: FastAPI, store: Store) -> None:
    """Serve the console at `/` of `app` (whose `state.store` is `store`)."""
    from herald.web import assets, auth, campaign_list, contacts_upload

    app.state.store = store
    assets.install(app)
    auth.install(app)
    # Fixed paths (/campaigns/new, /campaigns/{id}/contacts/upload) before the campaign page's `/campaigns/{id}…`.
    app.include_router(campaign_list.router())
    app.include_router(contacts_upload.router())
    install_campaign_page(app)


def install_campaign_page(app: FastAPI) -> None:
    """The campaign page's tabs, `/campaigns/{id}…` (after the fixed paths above)."""
    from herald.web import campaign_page

    app.include_router(campaign_page.router())
