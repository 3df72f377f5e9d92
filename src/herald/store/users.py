"""People who sign in to the web console: users of a business, their sessions, and failed sign-ins for the lock-out.

Passwords are kept only as Argon2id hashes (argon2-cffi, RFC 9106 parameters): a memory-hard hash makes a stolen
copy of the users table expensive to guess at, which a fast hash such as the API keys' SHA-256 would not (passwords
are chosen by people; API keys are 256 random bits). Session tokens are random too, so SHA-256 is enough for them.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from herald.store import schema as t
from herald.store.queries import Tx

#: The shortest password `create_user` accepts.
MIN_PASSWORD = 8
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
#: Verified when the e-mail is unknown, so that an unknown address takes as long to refuse as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class UserExists(Exception):
    """`herald users create` with an e-mail already taken (by any business)."""


@dataclass(frozen=True, slots=True)
class User:
    """A console user as listed (never the password hash)."""

    id: int
    business_id: int
    business: str
    email: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class SessionUser:
    """Who a live session speaks for."""

    session_id: int
    user_id: int
    business_id: int
    email: str
    last_seen_at: datetime


def normalise_email(email: str) -> str:
    """The stored form of an e-mail: trimmed and lower-cased; ValueError if it does not look like one."""
    found = email.strip().lower()
    if len(found) > 320 or not _EMAIL.match(found):
        raise ValueError(f"{email.strip()[:80]!r} is not an e-mail address")
    return found


def hash_token(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- users ---------------------------------------------------------------------------------------------------------


def create_user(tx: Tx, business_id: int, email: str, password: str, now: datetime) -> User:
    """A new user of the business; ValueError for a bad e-mail or a short password, UserExists for a taken e-mail."""
    address = normalise_email(email)
    if len(password) < MIN_PASSWORD:
        raise ValueError(f"a password needs at least {MIN_PASSWORD} characters")
    if tx.connection.execute(select(t.users.c.id).where(t.users.c.email == address)).first() is not None:
        raise UserExists(f"a user with e-mail {address!r} already exists")
    try:
        user_id = tx.connection.execute(
            insert(t.users)
            .values(business_id=business_id, email=address, password_hash=_hasher.hash(password), created_at=now)
            .returning(t.users.c.id)
        ).scalar_one()
    except IntegrityError:  # created by another process since the check above
        raise UserExists(f"a user with e-mail {address!r} already exists") from None
    return next(user for user in users(tx, business_id) if user.id == user_id)


def users(tx: Tx, business_id: int | None = None) -> list[User]:
    """Users (of one business, or all), oldest first."""
    u = t.users.c
    query = (
        select(u.id, u.business_id, t.businesses.c.name, u.email, u.created_at)
        .join(t.businesses, t.businesses.c.id == u.business_id)
        .order_by(u.id)
    )
    if business_id is not None:
        query = query.where(u.business_id == business_id)
    return [User(row.id, row.business_id, row.name, row.email, row.created_at) for row in tx.connection.execute(query)]


def check_password(tx: Tx, email: str, password: str) -> int | None:
    """The id of the user with this e-mail and password, or None (unknown e-mail or wrong password alike)."""
    try:
        address = normalise_email(email)
    except ValueError:
        address = ""
    row = tx.connection.execute(select(t.users.c.id, t.users.c.password_hash).where(t.users.c.email == address)).first()
    try:
        _hasher.verify(_DUMMY_HASH if row is None else row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return None if row is None else int(row.id)


# --- failed sign-ins -----------------------------------------------------------------------------------------------


def failures_since(tx: Tx, email: str, since: datetime) -> int:
    """Failed sign-ins with this e-mail (as typed, normalised when it can be) since `since`."""
    f = t.login_failures.c
    query = select(func.count()).where(f.email == _failure_key(email), f.failed_at >= since)
    return int(tx.connection.execute(query).scalar_one())


def record_failure(tx: Tx, email: str, now: datetime, keep: timedelta) -> None:
    """Count a failed sign-in, and forget this e-mail's failures older than `keep`."""
    key = _failure_key(email)
    f = t.login_failures.c
    tx.connection.execute(delete(t.login_failures).where(f.email == key, f.failed_at < now - keep))
    tx.connection.execute(insert(t.login_failures).values(email=key, failed_at=now))


def clear_failures(tx: Tx, email: str) -> None:
    """Forget the failures of an e-mail (after a successful sign-in)."""
    tx.connection.execute(delete(t.login_failures).where(t.login_failures.c.email == _failure_key(email)))


def _failure_key(email: str) -> str:
    try:
        return normalise_email(email)
    except ValueError:
        return email.strip().lower()[:320]


# --- sessions ------------------------------------------------------------------------------------------------------


def create_session(tx: Tx, user_id: int, now: datetime, lifetime: timedelta) -> str:
    """A new session of the user, valid for `lifetime`: returns its token (kept only as a hash). The user's expired
    sessions are removed at the same time."""
    s = t.web_sessions.c
    tx.connection.execute(delete(t.web_sessions).where(s.user_id == user_id, s.expires_at <= now))
    token = secrets.token_urlsafe(32)
    tx.connection.execute(
        insert(t.web_sessions).values(
            token_hash=hash_token(token), user_id=user_id, created_at=now, expires_at=now + lifetime, last_seen_at=now
        )
    )
    return token


def session_user(tx: Tx, token: str, now: datetime, idle: timedelta) -> SessionUser | None:
    """The user of a live session: None for an unknown token, a session past its expiry, or one idle for `idle`."""
    s, u = t.web_sessions.c, t.users.c
    row = tx.connection.execute(
        select(s.id, s.user_id, s.expires_at, s.last_seen_at, u.business_id, u.email)
        .join(t.users, u.id == s.user_id)
        .where(s.token_hash == hash_token(token))
    ).first()
    if row is None or row.expires_at <= now or row.last_seen_at + idle <= now:
        return None
    return SessionUser(row.id, row.user_id, row.business_id, row.email, row.last_seen_at)


def touch_session(tx: Tx, session_id: int, now: datetime) -> None:
    """Note that the session was used now (what the idle limit counts from)."""
    tx.connection.execute(update(t.web_sessions).where(t.web_sessions.c.id == session_id).values(last_seen_at=now))


def end_session(tx: Tx, token: str) -> None:
    """Sign a session out (nothing happens for an unknown token)."""
    tx.connection.execute(delete(t.web_sessions).where(t.web_sessions.c.token_hash == hash_token(token)))
