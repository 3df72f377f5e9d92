"""Sign-in, sessions, sign-out, lock-out and CSRF at the HTTP level (issue 16), on a real SQLite file."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from herald.engine.clock import RealClock
from herald.store import schema as t
from herald.web import auth

from .conftest import PASSWORD, Console, csrf_of


def test_signed_out_pages_redirect_to_the_sign_in_form(console: Console) -> None:
    client = console.client()
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    response = client.get("/campaigns?status=active")
    assert response.headers["location"] == "/login?next=%2Fcampaigns%3Fstatus%3Dactive"


def test_sign_in_sets_a_safe_cookie_and_shows_the_list(console: Console) -> None:
    client = console.client()
    response = console.post_login(client, console.acme.email.upper(), PASSWORD)  # e-mails are case-insensitive
    assert response.status_code == 303
    assert response.headers["location"] == "/"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(auth.SESSION_COOKIE + "="))
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    page = client.get("/")
    assert page.status_code == 200
    assert console.acme.email in page.text
    assert "New campaign" in page.text


def test_the_cookie_is_secure_over_https(console: Console) -> None:
    client = console.client()
    client.base_url = client.base_url.copy_with(scheme="https")
    response = console.post_login(client, console.acme.email, PASSWORD)
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith(auth.SESSION_COOKIE + "="))
    assert "Secure" in cookie


def test_sign_in_goes_back_to_the_page_asked_for_but_never_elsewhere(console: Console) -> None:
    client = console.client()
    for asked, landed in (("/campaigns?channel=whatsapp", "/campaigns?channel=whatsapp"), ("//evil.test/", "/")):
        token = csrf_of(client.get("/login").text)
        response = client.post(
            "/login", data={"csrf_token": token, "email": console.acme.email, "password": PASSWORD, "next": asked}
        )
        assert response.headers["location"] == landed


def test_wrong_password_and_unknown_email_get_the_same_answer(console: Console) -> None:
    client = console.client()
    wrong = console.post_login(client, console.acme.email, "not the password")
    unknown = console.post_login(client, "nobody@nowhere.test", "not the password")
    assert wrong.status_code == unknown.status_code == 401
    assert auth.BAD_CREDENTIALS in wrong.text
    assert auth.BAD_CREDENTIALS in unknown.text
    assert auth.SESSION_COOKIE not in client.cookies
    assert client.get("/").status_code == 303


def test_lock_out_after_repeated_failures_even_with_the_right_password(console: Console) -> None:
    client = console.client()
    for _ in range(auth.LOCK_AFTER):
        assert console.post_login(client, console.acme.email, "guess").status_code == 401
    locked = console.post_login(client, console.acme.email, PASSWORD)
    assert locked.status_code == 401
    assert auth.LOCKED in locked.text
    # Another user is not locked out, and an unknown e-mail locks the same way (nothing tells which exist).
    assert console.post_login(console.client(), console.globex.email, PASSWORD).status_code == 303
    for _ in range(auth.LOCK_AFTER):
        console.post_login(client, "nobody@nowhere.test", "guess")
    assert auth.LOCKED in console.post_login(client, "nobody@nowhere.test", "guess").text
    # Once the window has passed (failures moved back in time), the right password works again.
    long_ago = RealClock().now() - auth.LOCK_WINDOW - timedelta(seconds=1)
    with console.store.tx() as tx:
        tx.connection.execute(update(t.login_failures).values(failed_at=long_ago))
    assert console.post_login(client, console.acme.email, PASSWORD).status_code == 303


def test_sign_out_ends_the_session_for_good(console: Console) -> None:
    client = console.sign_in(console.acme)
    token = client.cookies[auth.SESSION_COOKIE]
    response = client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/").status_code == 303
    # The old cookie, replayed, signs no one in: the session is gone from the database.
    replay = console.client()
    replay.cookies.set(auth.SESSION_COOKIE, token)
    assert replay.get("/").status_code == 303


def test_every_post_needs_the_csrf_token(console: Console) -> None:
    client = console.sign_in(console.acme)
    assert client.post("/logout", data={}).status_code == 403
    assert client.post("/logout", data={"csrf_token": "0" * 64}).status_code == 403
    assert client.get("/").status_code == 200  # still signed in
    # The sign-in form: the token must match the cookie set with the form.
    fresh = console.client()
    fresh.get("/login")
    data = {"email": console.acme.email, "password": PASSWORD}
    assert fresh.post("/login", data=data).status_code == 403
    assert fresh.post("/login", data={**data, "csrf_token": "forged"}).status_code == 403
    assert console.client().post("/login", data={**data, "csrf_token": "forged"}).status_code == 403


def test_a_csrf_token_of_another_session_is_refused(console: Console) -> None:
    first = console.sign_in(console.acme)
    second = console.sign_in(console.acme)
    other_token = csrf_of(first.get("/").text)
    assert second.post("/logout", data={"csrf_token": other_token}).status_code == 403


def test_sessions_expire(console: Console) -> None:
    client = console.sign_in(console.acme)
    assert client.get("/").status_code == 200
    with console.store.tx() as tx:
        sessions = t.web_sessions.c
        tx.connection.execute(update(t.web_sessions).values(expires_at=sessions.created_at))
    response = client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"


def test_idle_sessions_expire(console: Console) -> None:
    client = console.sign_in(console.acme)
    idle_since = RealClock().now() - auth.SESSION_IDLE
    with console.store.tx() as tx:
        tx.connection.execute(update(t.web_sessions).values(last_seen_at=idle_since))
    assert client.get("/").status_code == 303


def test_another_business_campaign_is_a_404(console: Console) -> None:
    theirs = console.campaign(console.globex, "Globex only")
    ours = console.campaign(console.acme, "Acme only")
    client = console.sign_in(console.acme)
    assert client.get(f"/campaigns/{ours}/contacts/upload").status_code == 200
    missing = client.get(f"/campaigns/{theirs}/contacts/upload")
    assert missing.status_code == 404
    assert "Globex only" not in missing.text
    assert client.get("/campaigns/999999/contacts/upload").status_code == 404
    assert "Globex only" not in client.get("/?archived=1").text


def test_a_form_posted_after_the_session_ended_goes_to_sign_in_then_the_list(console: Console) -> None:
    client = console.sign_in(console.acme)
    token = csrf_of(client.get("/").text)
    with console.store.tx() as tx:
        tx.connection.execute(update(t.web_sessions).values(expires_at=t.web_sessions.c.created_at))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
