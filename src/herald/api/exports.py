"""Herald's own routes over a campaign's results: each export of SPEC §7 streamed, and the analytics of `herald analyze`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse, StreamingResponse
from starlette.background import BackgroundTask

from herald.analytics.campaign import analyze_campaign
from herald.api.auth import CallerDep, StoreDep
from herald.api.campaign_views import RowId, campaign_of
from herald.api.errors import ApiError
from herald.api.models import AUTH_RESPONSES, ApiErrorBody, Strict
from herald.exports.formats import available, export, header, rows
from herald.exports.kinds import ExportKind
from herald.exports.writer import csv_chunks
from herald.store.queries import Store

router = APIRouter(tags=["herald: results"], responses=AUTH_RESPONSES)

_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ApiErrorBody, "description": "No such campaign in your business"}
}


def _csv_stream(store: Store, campaign_id: int, kind: ExportKind, layout: Any, guard: bool) -> Iterator[bytes]:
    # One read snapshot for the whole download, however long the client takes; closed if the client goes away.
    with store.read() as tx:
        campaign = tx.campaign(campaign_id)
        for text in csv_chunks(header(campaign, kind, layout), rows(tx, campaign, kind, layout), guard=guard):
            yield text.encode("utf-8")


@router.get(
    "/campaigns/{campaign_id}/exports/{kind}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The export file (CSV, or Parquet with ?format=parquet)",
            "content": {"text/csv": {}, "application/vnd.apache.parquet": {}},
        },
        404: {
            "model": ApiErrorBody,
            "description": "No such campaign in your business, or no such export for its channel",
        },
    },
)
def get_export(
    campaign_id: RowId,
    kind: ExportKind,
    caller: CallerDep,
    store: StoreDep,
    format: Annotated[Literal["csv", "parquet"], Query(description="File format")] = "csv",
    layout: Annotated[
        Literal["classic", "2026-07"], Query(description="Call export layout (2026-07 adds ended_by, ended_reason)")
    ] = "classic",
    raw: Annotated[bool, Query(description="Turn off the spreadsheet formula guard")] = False,
) -> Any:
    """One export of the campaign, byte for byte what `herald export` writes, streamed as it is read."""
    with store.read() as tx:
        campaign = campaign_of(tx, caller.business_id, campaign_id)
    if kind not in available(campaign):
        raise ApiError(404, "NOT_FOUND", f"a {campaign.channel} campaign has no {kind} export")
    name = f"campaign-{campaign_id}-{kind.value}"
    if format == "parquet":
        handle, path = tempfile.mkstemp(prefix=f"herald-{name}-", suffix=".parquet")
        os.close(handle)
        try:
            export(store, campaign_id, kind, path, fmt="parquet", guard=not raw, layout=layout)
        except BaseException:
            os.unlink(path)
            raise
        return FileResponse(
            path,
            media_type="application/vnd.apache.parquet",
            filename=f"{name}.parquet",
            background=BackgroundTask(os.unlink, path),
        )
    return StreamingResponse(
        _csv_stream(store, campaign_id, kind, layout, not raw),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


class AnalyticsResponse(Strict):
    """The metrics of `herald analyze` for each export the campaign has (rates are fractions)."""

    success: bool
    campaign_id: int
    exports: dict[str, dict[str, Any]]


@router.get("/campaigns/{campaign_id}/analytics", response_model=AnalyticsResponse, responses=_NOT_FOUND)
def get_analytics(campaign_id: RowId, caller: CallerDep, store: StoreDep) -> AnalyticsResponse:
    """Status counts, reach, conversion, cost audit by answered_by, sendout funnel: the numbers of `herald analyze`."""
    with store.read() as tx:
        campaign_of(tx, caller.business_id, campaign_id)
    return AnalyticsResponse(success=True, campaign_id=campaign_id, exports=analyze_campaign(store, campaign_id))
