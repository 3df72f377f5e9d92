"""Contact files uploaded in the web console, kept between their preview and their import, then their report.

Every lookup takes the user (and campaign) it must belong to and answers None otherwise, so that another user's
upload is a 404 like one that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from herald.store import schema as t
from herald.store.queries import Tx

#: A file previewed but never imported is removed after this long (at the next upload).
KEEP_STAGED = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file: `data` until it is imported, then `report` (and the rejects CSV, read on demand)."""

    id: int
    user_id: int
    campaign_id: int
    filename: str
    data: bytes | None
    report: dict[str, Any] | None
    created_at: datetime
    imported_at: datetime | None


def stage(tx: Tx, user_id: int, campaign_id: int, filename: str, data: bytes, now: datetime) -> int:
    """Keep a file for its preview; returns its id. Files staged long ago and never imported are removed."""
    u = t.web_uploads.c
    tx.connection.execute(delete(t.web_uploads).where(u.imported_at.is_(None), u.created_at < now - KEEP_STAGED))
    return int(
        tx.connection.execute(
            insert(t.web_uploads)
            .values(user_id=user_id, campaign_id=campaign_id, filename=filename[:255], data=data, created_at=now)
            .returning(u.id)
        ).scalar_one()
    )


def upload(tx: Tx, upload_id: int, user_id: int, campaign_id: int) -> Upload | None:
    """The user's upload to the campaign, or None."""
    u = t.web_uploads.c
    row = tx.connection.execute(
        select(u.id, u.user_id, u.campaign_id, u.filename, u.data, u.report, u.created_at, u.imported_at).where(
            u.id == upload_id, u.user_id == user_id, u.campaign_id == campaign_id
        )
    ).first()
    if row is None:
        return None
    return Upload(
        row.id, row.user_id, row.campaign_id, row.filename, row.data, row.report, row.created_at, row.imported_at
    )


def rejects_csv(tx: Tx, upload_id: int, user_id: int, campaign_id: int) -> bytes | None:
    """The rejects CSV of an imported upload of the user, or None."""
    u = t.web_uploads.c
    found = tx.connection.execute(
        select(u.rejects_csv).where(
            u.id == upload_id, u.user_id == user_id, u.campaign_id == campaign_id, u.imported_at.is_not(None)
        )
    ).scalar()
    return None if found is None else bytes(found)


def claim(tx: Tx, upload_id: int, now: datetime) -> bool:
    """Take a staged file for its import; False if it was taken already (a second click, another process), so that a
    file is imported once."""
    u = t.web_uploads.c
    result = tx.connection.execute(
        update(t.web_uploads).where(u.id == upload_id, u.imported_at.is_(None)).values(imported_at=now)
    )
    return bool(result.rowcount)


def release(tx: Tx, upload_id: int) -> None:
    """Give a claimed file back after its import failed (nothing was imported), so that it can be tried again."""
    u = t.web_uploads.c
    tx.connection.execute(update(t.web_uploads).where(u.id == upload_id, u.report.is_(None)).values(imported_at=None))


def finish(tx: Tx, upload_id: int, report: dict[str, Any], rejects: bytes) -> None:
    """Keep the import's report and rejects CSV in place of the file."""
    tx.connection.execute(
        update(t.web_uploads)
        .where(t.web_uploads.c.id == upload_id)
        .values(data=None, report=report, rejects_csv=rejects)
    )
