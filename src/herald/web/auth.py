"""Signing in to the web console: the sign-in form, sessions, sign-out, the lock-out and CSRF protection.

- The session cookie holds a random token (256 bits) whose SHA-256 the database keeps: a server-side session can be
  ended (sign-out, expiry) and needs no signing secret to configure or rotate. HttpOnly, SameSite=Lax, and Secure
  when the request came over https.
- CSRF: every form carries a hidden `csrf_token`, checked on every POST (403 otherwise). A signed-in form's token is
  derived from the session token (SHA-256 with a fixed label), so it is unguessable without the cookie and needs no
  storage; the sign-in form, before any session, uses a double-submit cookie.
- Lock-out: after `LOCK_AFTER` failed sign-ins with one e-mail within `LOCK_WINDOW`, that e-mail is refused until the
  window has passed; an unknown e-mail and a wrong password get the same message.
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException

from herald.engine.clock import RealClock
from herald.store import users as u
from herald.store.queries import Store
from herald.web.templating import render

SESSION_COOKIE = "herald_session"
LOGIN_CSRF_COOKIE = "herald_login_csrf"
#: A session ends this long after sign-in, or after this long unused, whichever comes first.
SESSION_LIFETIME = timedelta(hours=12)
SESSION_IDLE = timedelta(hours=2)
#: last_seen_at is written at most this often (a page load is otherwise a read).
_TOUCH_EVERY = timedelta(minutes=1)
LOCK_AFTER = 5
LOCK_WINDOW = timedelta(minutes=15)
BAD_CREDENTIALS = "Wrong e-mail or password."
LOCKED = "Too many failed sign-ins with this e-mail: try again in 15 minutes."
FORM_EXPIRED = "This form has expired or did not come from this site. Go back, reload the page and try again."


@dataclass(frozen=True, slots=True)
class WebUser:
    """The signed-in user of a request: the business every query of the page is scoped to."""

    user_id: int
    business_id: int
    email: str
    csrf_token: str


class SignInRequired(Exception):
    """Raised by `current_user` when no live session comes with the request: answered with a redirect to /login."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


class WebError(Exception):
    """A page other than success (403, 404, …), answered as an HTML page with `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def store_of(request: Request) -> Store:
    """The store of the application serving `request`."""
    store: Store = request.app.state.store
    return store


def csrf_for(session_token: str) -> str:
    """The CSRF token of the forms of a session."""
    return hashlib.sha256(b"herald-csrf\0" + session_token.encode()).hexdigest()


def _same(given: object, expected: str) -> bool:
    return isinstance(given, str) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def _lookup(store: Store, token: str) -> u.SessionUser | None:
    now = RealClock().now()
    with store.read() as tx:
        found = u.session_user(tx, token, now, SESSION_IDLE)
    if found is not None and now - found.last_seen_at >= _TOUCH_EVERY:
        with store.tx() as tx:
            u.touch_session(tx, found.session_id, now)
    return found


async def current_user(request: Request) -> WebUser:
    """The signed-in user; SignInRequired (a redirect to /login) when the request has no live session."""
    cached: WebUser | None = getattr(request.state, "web_user", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    found = await run_in_threadpool(_lookup, store_of(request), token) if token else None
    if found is None or token is None:
        # Back to this page after signing in; a form post cannot be replayed, so it goes back to the list.
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise SignInRequired(path if request.method == "GET" else "/")
    user = WebUser(found.user_id, found.business_id, found.email, csrf_for(token))
    request.state.web_user = user
    return user


UserDep = Annotated[WebUser, Depends(current_user)]


async def checked_form(request: Request, user: UserDep) -> FormData:
    """The posted form of a signed-in user, once its CSRF token is checked (WebError 403 otherwise)."""
    form = await request.form()
    if not _same(form.get("csrf_token"), user.csrf_token):
        raise WebError(403, FORM_EXPIRED)
    return form


FormDep = Annotated[FormData, Depends(checked_form)]


def _local(path: str | None) -> str:
    """`path` if it is a path of this site, else `/` (a sign-in never redirects elsewhere)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return "/"
    parts = urlsplit(path)
    return "/" if parts.scheme or parts.netloc else path


def _cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def _login_page(request: Request, next_path: str, email: str = "", error: str = "", status: int = 200) -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
    response = render(
        request, "login.html", status, csrf_token=token, next_path=_local(next_path), email=email, error=error
    )
    _cookie(response, request, LOGIN_CSRF_COOKIE, token, None)
    return response


def _sign_in(store: Store, email: str, password: str) -> tuple[str | None, str]:
    """(session token, "") on success, else (None, the message to show)."""
    now = RealClock().now()
    with store.read() as tx:
        locked = u.failures_since(tx, email, now - LOCK_WINDOW) >= LOCK_AFTER
    if locked:
        return None, LOCKED
    with store.read() as tx:
        user_id = u.check_password(tx, email, password)  # slow on purpose (Argon2): outside any write lock
    with store.tx() as tx:
        if user_id is None:
            u.record_failure(tx, email, now, keep=LOCK_WINDOW)
            return None, BAD_CREDENTIALS
        u.clear_failures(tx, email)
        return u.create_session(tx, user_id, now, SESSION_LIFETIME), ""


def router() -> APIRouter:
    """/login (GET, POST) and /logout (POST)."""
    routes = APIRouter(include_in_schema=False)

    @routes.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> Response:
        return _login_page(request, next)

    @routes.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await request.form()
        if not _same(form.get("csrf_token"), request.cookies.get(LOGIN_CSRF_COOKIE, "")):
            raise WebError(403, FORM_EXPIRED)
        email, password = str(form.get("email", "")), str(form.get("password", ""))
        next_path = str(form.get("next", "/"))
        token, error = await run_in_threadpool(_sign_in, store_of(request), email, password)
        if token is None:
            return _login_page(request, next_path, email=email, error=error, status=401)
        response = RedirectResponse(_local(next_path), status_code=303)
        _cookie(response, request, SESSION_COOKIE, token, int(SESSION_LIFETIME.total_seconds()))
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/")
        return response

    @routes.post("/logout")
    async def logout(request: Request, form: FormDep) -> Response:
        token = request.cookies.get(SESSION_COOKIE, "")
        store = store_of(request)

        def end() -> None:
            with store.tx() as tx:
                u.end_session(tx, token)

        await run_in_threadpool(end)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return routes


def install(app: FastAPI) -> None:
    """The sign-in routes and the handlers that answer SignInRequired and WebError as pages."""
    app.include_router(router())

    @app.exception_handler(SignInRequired)
    async def _sign_in_required(request: Request, error: SignInRequired) -> Response:
        target = "/login" if error.next_path in ("", "/") else f"/login?next={quote(error.next_path, safe='')}"
        response = RedirectResponse(target, status_code=303)
        if request.cookies.get(SESSION_COOKIE):
            response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.exception_handler(WebError)
    async def _web_error(request: Request, error: WebError) -> Response:
        return render(request, "error.html", error.status, status=error.status, message=error.message)

    # A browser asking for a page that does not exist (`/campaigns/abc`, a mistyped path) gets a page, not the REST
    # API's JSON error; API clients and every path of the API keep the API's answer.
    api_answer = app.exception_handlers[StarletteHTTPException]

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> Response:
        path = request.url.path
        wants_page = "text/html" in request.headers.get("accept", "")
        if not wants_page or path.startswith(_API_PATHS) or error.status_code not in _PAGE_MESSAGES:
            answer = api_answer(request, error)
            return await answer if inspect.isawaitable(answer) else answer
        message = _PAGE_MESSAGES[error.status_code]
        return render(request, "error.html", error.status_code, status=error.status_code, message=message)


_API_PATHS = ("/api/", "/webhooks/", "/healthz", "/readyz", "/metrics", "/openapi", "/static/")
_PAGE_MESSAGES = {404: "There is no such page.", 405: "This page cannot be used that way."}
