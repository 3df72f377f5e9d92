"""Contacts upload, `/campaigns/{id}/contacts/upload`: choose a CSV, see its first rows with the encoding and
delimiter the import will use, then import it and read the report: added, updated, blank lines, and every rejected
row with its line and reason, downloadable as a CSV (formula-guarded, as `herald contacts import --rejects` writes).

The file is read by `herald.imports` (the encoding and delimiter detection, the rows) and stored by the engine's
`import_contacts`, as the command line does. Between the preview and the import it is kept in the database
(`store.uploads`), so that any `herald serve` process can answer the next step; the report page is a GET of the
stored report (POST, redirect, GET), so reloading it never imports twice.
"""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from herald.engine import campaigns as engine
from herald.engine.clock import RealClock
from herald.imports import ImportFileError, ImportResult, write_rejects
from herald.imports.decoding import decode, detect_delimiter, header_line
from herald.store import uploads
from herald.store.queries import Store
from herald.store.records import Campaign
from herald.web.auth import FormDep, UserDep, WebError, WebUser, store_of
from herald.web.scope import CampaignDep
from herald.web.templating import render

PREVIEW_ROWS = 10
#: Rejected rows listed on the report page; all of them are in the CSV.
SHOWN_REJECTS = 10_000
ENCODINGS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8 (with a byte order mark)",
    "cp1252": "Windows-1252 (Latin-1), converted to UTF-8",
    "latin-1": "ISO-8859-1 (Latin-1), converted to UTF-8",
}
DELIMITERS = {",": "comma", ";": "semicolon", "\t": "tab"}
NOT_FOUND = "There is no such upload for this campaign."


def preview(data: bytes) -> dict[str, Any]:
    """The encoding, delimiter, header and first rows of a contact file, as the import will read them;
    ImportFileError when the file cannot be read at all."""
    text, encoding = decode(data)
    if not text or text.isspace():
        raise ImportFileError("the file is empty")
    delimiter = detect_delimiter(header_line(text))
    reader = csv.reader(io.StringIO(text[: 256 * 1024]), delimiter=delimiter)
    rows: list[list[str]] = []
    try:
        for row in reader:
            rows.append(row)
            if len(rows) > PREVIEW_ROWS:
                break
    except csv.Error:  # a broken record further on is the import's to report; the preview shows what it can
        pass
    header, body = (rows[0], rows[1:]) if rows else ([], [])
    return {
        "encoding": encoding,
        "encoding_name": ENCODINGS.get(encoding, encoding),
        "delimiter_name": DELIMITERS.get(delimiter, repr(delimiter)),
        "header": header,
        "rows": body,
        "bytes": len(data),
    }


def _rejects_bytes(result: ImportResult) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "rejects.csv"
        write_rejects(path, result, guard=True)
        return path.read_bytes()


def report_of(added: int, updated: int, result: ImportResult) -> dict[str, Any]:
    """What the report page shows (kept as JSON with the upload)."""
    return {
        "rows": result.records,
        "added": added,
        "updated": updated,
        "rejected": len(result.rejects),
        "blank": result.blank_lines,
        "encoding_name": ENCODINGS.get(result.encoding, result.encoding),
        "delimiter_name": DELIMITERS.get(result.delimiter, repr(result.delimiter)),
        "padded_lines": result.padded_lines[:1000],
        "rejects": [[r.line, str(r.reason), r.detail] for r in result.rejects[:SHOWN_REJECTS]],
    }


def _stage(store: Store, user: WebUser, campaign: Campaign, filename: str, data: bytes) -> int:
    with store.tx() as tx:
        return uploads.stage(tx, user.user_id, campaign.id, filename, data, RealClock().now())


def _upload(store: Store, user: WebUser, campaign: Campaign, upload_id: int) -> uploads.Upload:
    with store.read() as tx:
        found = uploads.upload(tx, upload_id, user.user_id, campaign.id)
    if found is None:
        raise WebError(404, NOT_FOUND)
    return found


def _import(
    store: Store, user: WebUser, campaign: Campaign, upload_id: int, if_duplicate: Literal["skip", "update"]
) -> str:
    """Import a staged file once; "" or the message to show on its preview page."""
    found = _upload(store, user, campaign, upload_id)
    now = RealClock().now()
    with store.tx() as tx:
        if found.data is None or not uploads.claim(tx, upload_id, now):
            return ""  # imported already: its report is shown
    try:
        report = engine.import_contacts(store, campaign.id, found.data, now, if_duplicate=if_duplicate)
    except (ImportFileError, engine.CampaignFinished, ValueError) as error:
        with store.tx() as tx:
            uploads.release(tx, upload_id)
        return f"{error}; nothing was imported"
    with store.tx() as tx:
        uploads.finish(
            tx, upload_id, report_of(report.added, report.updated, report.result), _rejects_bytes(report.result)
        )
    return ""


def _rejects(store: Store, user: WebUser, campaign: Campaign, upload_id: int) -> bytes:
    with store.read() as tx:
        found = uploads.rejects_csv(tx, upload_id, user.user_id, campaign.id)
    if found is None:
        raise WebError(404, NOT_FOUND)
    return found


def _upload_page(request: Request, campaign: Campaign, error: str = "", created: bool = False) -> HTMLResponse:
    return render(
        request, "contacts_upload.html", 400 if error else 200, campaign=campaign, error=error, created=created
    )


def router() -> APIRouter:
    """The upload form, the preview, the import and its report, and the rejects CSV."""
    routes = APIRouter(include_in_schema=False)
    base = "/campaigns/{id:int}/contacts/upload"

    @routes.get(base, response_class=HTMLResponse)
    def upload_form(request: Request, user: UserDep, campaign: CampaignDep, created: int = 0) -> HTMLResponse:
        """The form: a CSV file of contacts for the campaign."""
        return _upload_page(request, campaign, created=bool(created))

    @routes.post(base, response_class=HTMLResponse)
    async def upload_file(request: Request, user: UserDep, campaign: CampaignDep, form: FormDep) -> Response:
        """Keep the chosen file and show its preview (or why it cannot be read)."""
        file = form.get("file")
        data = await file.read() if isinstance(file, UploadFile) else b""
        if not data:
            return _upload_page(request, campaign, "choose a CSV file of contacts")
        try:
            preview(data)
        except ImportFileError as error:
            return _upload_page(request, campaign, f"{error}; nothing was imported")
        filename = (file.filename if isinstance(file, UploadFile) else None) or "contacts.csv"
        upload_id = await run_in_threadpool(_stage, store_of(request), user, campaign, filename, data)
        return RedirectResponse(f"/campaigns/{campaign.id}/contacts/uploads/{upload_id}", status_code=303)

    @routes.get("/campaigns/{id:int}/contacts/uploads/{upload_id:int}", response_class=HTMLResponse)
    async def upload_page(request: Request, user: UserDep, campaign: CampaignDep, upload_id: int) -> HTMLResponse:
        """A staged file's preview with the Import button, or an imported file's report."""
        found = await run_in_threadpool(_upload, store_of(request), user, campaign, upload_id)
        shown = None if found.data is None else preview(found.data)
        return render(
            request,
            "contacts_report.html",
            campaign=campaign,
            upload=found,
            preview=shown,
            report=found.report,
            error="",
            shown_rejects=SHOWN_REJECTS,
        )

    @routes.post("/campaigns/{id:int}/contacts/uploads/{upload_id:int}", response_class=HTMLResponse)
    async def import_file(
        request: Request, user: UserDep, campaign: CampaignDep, upload_id: int, form: FormDep
    ) -> Response:
        """Import the staged file, then show its report."""
        choice: Literal["skip", "update"] = "update" if form.get("if_duplicate") == "update" else "skip"
        error = await run_in_threadpool(_import, store_of(request), user, campaign, upload_id, choice)
        if error:
            found = await run_in_threadpool(_upload, store_of(request), user, campaign, upload_id)
            return render(
                request,
                "contacts_report.html",
                400,
                campaign=campaign,
                upload=found,
                preview=None if found.data is None else preview(found.data),
                report=None,
                error=error,
                shown_rejects=SHOWN_REJECTS,
            )
        return RedirectResponse(f"/campaigns/{campaign.id}/contacts/uploads/{upload_id}", status_code=303)

    @routes.get("/campaigns/{id:int}/contacts/uploads/{upload_id:int}/rejects.csv")
    async def rejects_file(request: Request, user: UserDep, campaign: CampaignDep, upload_id: int) -> Response:
        """Every rejected row (line, reason, detail, then the file's columns), formula-guarded."""
        data = await run_in_threadpool(_rejects, store_of(request), user, campaign, upload_id)
        name = f"campaign-{campaign.id}-rejects-{upload_id}.csv"
        return Response(
            data,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
        )

    return routes
