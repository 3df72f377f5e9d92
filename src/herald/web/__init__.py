"""The web console of `herald serve`: server-rendered pages (Jinja2) over the same services as the REST API.

`install(app, store)` adds it to the ASGI application; each page module has a `router()`. Pages work with JavaScript
off; `static/herald.js` only enhances them. What a page module uses:

- `auth.UserDep`: the signed-in `WebUser` (user id, business id, e-mail, CSRF token); signed out, a redirect to
  /login. Every query a page makes is scoped to `user.business_id`.
- `scope.CampaignDep`: with `{id:int}` in the path, the user's campaign, or the 404 page (another business's
  campaign is answered exactly as a missing one).
- `auth.FormDep`: a POSTed form whose `csrf_token` field has been checked (403 otherwise); every form carries
  `<input type="hidden" name="csrf_token" value="{{ csrf_token }}">`.
- `templating.render(request, "page.html", status, **context)`: the one Jinja2 environment (autoescape on); pages
  extend `base.html` (blocks `title`, `heading`, `tabs`, `content`, `scripts`) and import `macros.html` as `ui`
  (`ui.tab_strip`, `ui.status_badge`, `ui.percent`, form fields). `plotly_url` is plotly.js, served once.
- `auth.WebError(status, message)`: an error page.
"""

from __future__ import annotations

from fastapi import FastAPI

from herald.store.queries import Store


def install(app: FastAPI, store: Store) -> None:
    """Serve the console at `/` of `app` (whose `state.store` is `store`)."""
    from herald.web import assets, auth, campaign_list, contacts_upload, new_campaign

    app.state.store = store
    assets.install(app)
    auth.install(app)
    # Fixed paths (/campaigns/new, /campaigns/{id}/contacts/upload) before the campaign page's `/campaigns/{id}…`.
    app.include_router(campaign_list.router())
    app.include_router(new_campaign.router())
    app.include_router(contacts_upload.router())
    install_campaign_page(app)


def install_campaign_page(app: FastAPI) -> None:
    """The campaign page's tabs, `/campaigns/{id}…` (after the fixed paths above)."""
    from herald.web import campaign_page

    app.include_router(campaign_page.router())
