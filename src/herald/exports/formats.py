"""The five export layouts (SPEC §7): Altur contacts, calls, results, recordings; Connectly sendout."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from herald.domain.durations import format_mmss
from herald.domain.statuses import Channel
from herald.exports.columns import CALL_COLUMNS, CALL_COLUMNS_2026_07, CONTACT_COLUMNS, SENDOUT_COLUMNS
from herald.exports.kinds import ExportKind
from herald.exports.writer import Format, write_table
from herald.store.queries import Store, Tx
from herald.store.records import Campaign

Layout = Literal["classic", "2026-07"]

PHONE_ONLY = (ExportKind.CALLS, ExportKind.RECORDINGS)
WHATSAPP_ONLY = (ExportKind.SENDOUT,)


class ExportNotAvailable(ValueError):
    """An export that the campaign's channel does not have."""


def _bool(value: bool) -> str:
    return "True" if value else "False"


class _LocalTimes:
    """Formats UTC instants in a zone, remembering recent ones: rows written in one engine step share a time."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self.cache: dict[datetime, str] = {}

    def __call__(self, value: datetime | None) -> str:
        if value is None:
            return ""
        text = self.cache.get(value)
        if text is None:
            if len(self.cache) > 4096:
                self.cache.clear()
            text = self.cache[value] = value.astimezone(self.zone).strftime("%Y-%m-%d %H:%M:%S")
        return text


def _utc_micro(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if value is not None else ""


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False) if value else ""


def _dynamic(tags: Sequence[str], fields: Sequence[str], row_tags: Any, extracted: Any) -> list[str]:
    present = set(row_tags or ())
    values = extracted or {}
    return [_bool(tag in present) for tag in tags] + [str(values.get(name, "")) for name in fields]


def contact_rows(tx: Tx, campaign: Campaign, results_only: bool = False) -> Iterator[list[str]]:
    """Rows of the contact export (or, with `results_only`, the results export)."""
    local = _LocalTimes(campaign.config.zone)
    name = campaign.name
    date = campaign.created_at.astimezone(local.zone).strftime("%Y-%m-%d")
    phone = campaign.channel is Channel.PHONE_CALL
    tags = campaign.config.agent.tags
    fields = campaign.config.agent.field_names
    for (
        external_id,
        contact,
        contact_name,
        context,
        status,
        retries,
        calls,
        billed,
        last_update,
        follow_up,
        row_tags,
        extracted,
    ) in tx.stream_contacts(campaign.id):
        extracted = extracted or {}
        if results_only and not any(str(extracted.get(field, "")) != "" for field in fields):
            continue
        yield [
            name,
            date,
            external_id or "",
            contact,
            contact_name,
            context,
            status,
            str(retries),
            str(calls) if phone else "",
            format_mmss(billed) if phone else "",
            local(last_update),
            _bool(bool(follow_up)),
            *_dynamic(tags, fields, row_tags, extracted),
        ]


def call_rows(
    tx: Tx, campaign: Campaign, layout: Layout = "classic", recordings_only: bool = False
) -> Iterator[list[str]]:
    """Rows of the call export (or, with `recordings_only`, the recording export: human-answered calls)."""
    local = _LocalTimes(campaign.config.zone)
    name = campaign.name
    date = campaign.created_at.astimezone(local.zone).strftime("%Y-%m-%d")
    tags = campaign.config.agent.tags
    fields = campaign.config.agent.field_names
    classic = layout != "2026-07"
    for (
        public_id,
        number_to,
        contact_name,
        call_type,
        status,
        answered_by,
        created_at,
        started_at,
        ended_at,
        ended_by,
        ended_reason,
        duration,
        billed,
        recording_url,
        row_tags,
        extracted,
    ) in tx.stream_calls(campaign.id, answered_by="human" if recordings_only else None):
        yield [
            name,
            date,
            public_id,
            number_to,
            contact_name,
            call_type,
            status,
            answered_by or "",
            local(created_at),
            local(started_at),
            local(ended_at),
            *(() if classic else (ended_by, ended_reason)),
            format_mmss(duration),
            format_mmss(billed),
            recording_url,
            *_dynamic(tags, fields, row_tags, extracted),
        ]


def sendout_rows(tx: Tx, campaign: Campaign) -> Iterator[list[str]]:
    """Rows of the Connectly sendout export: one per contact per send wave."""
    for (
        external_id,
        contact,
        sendout_id,
        session_id,
        sent_at,
        delivered_at,
        read_at,
        opt_out_at,
        error_code,
        error_msg,
        button_clicks,
        link_clicks,
        input_variables,
        output_variables,
    ) in tx.stream_messages(campaign.id):
        yield [
            external_id or contact,
            campaign.business_public_id,
            campaign.name,
            sendout_id,
            session_id,
            _utc_micro(sent_at),
            _utc_micro(delivered_at),
            _utc_micro(read_at),
            _utc_micro(opt_out_at),
            error_code,
            error_msg,
            _json(button_clicks),
            _json(link_clicks),
            _json(input_variables),
            _json(output_variables),
        ]


def header(campaign: Campaign, kind: ExportKind, layout: Layout = "classic") -> list[str]:
    """The header row of an export of `campaign`."""
    agent = campaign.config.agent
    dynamic = [*agent.tags, *agent.field_names]
    if kind in (ExportKind.CONTACTS, ExportKind.RESULTS):
        return [*CONTACT_COLUMNS, *dynamic]
    if kind in (ExportKind.CALLS, ExportKind.RECORDINGS):
        return [*(CALL_COLUMNS_2026_07 if layout == "2026-07" else CALL_COLUMNS), *dynamic]
    return list(SENDOUT_COLUMNS)


def available(campaign: Campaign) -> list[ExportKind]:
    """The exports a campaign's channel has."""
    excluded = WHATSAPP_ONLY if campaign.channel is Channel.PHONE_CALL else PHONE_ONLY
    return [kind for kind in ExportKind if kind not in excluded]


def rows(tx: Tx, campaign: Campaign, kind: ExportKind, layout: Layout = "classic") -> Iterator[Sequence[str]]:
    """The rows of one export."""
    if kind not in available(campaign):
        raise ExportNotAvailable(f"a {campaign.channel} campaign has no {kind} export")
    if kind is ExportKind.CONTACTS:
        return contact_rows(tx, campaign)
    if kind is ExportKind.RESULTS:
        return contact_rows(tx, campaign, results_only=True)
    if kind is ExportKind.CALLS:
        return call_rows(tx, campaign, layout)
    if kind is ExportKind.RECORDINGS:
        return call_rows(tx, campaign, layout, recordings_only=True)
    return sendout_rows(tx, campaign)


def export(
    store: Store,
    campaign_id: int,
    kind: ExportKind,
    destination: Path | str,
    *,
    fmt: Format = "csv",
    guard: bool = True,
    layout: Layout = "classic",
    on_rows: Callable[[int], None] | None = None,
) -> int:
    """Write one export of a campaign to `destination`; returns the number of rows.

    `on_rows` is told the number of rows written so far, every 10,000 rows and at the end (for progress bars).
    """
    with store.read() as tx:
        campaign = tx.campaign(campaign_id)
        stream = rows(tx, campaign, kind, layout)
        if on_rows is not None:
            stream = _counted(stream, on_rows)
        return write_table(header(campaign, kind, layout), stream, destination, fmt=fmt, guard=guard)


def _counted(stream: Iterator[Sequence[str]], on_rows: Callable[[int], None]) -> Iterator[Sequence[str]]:
    count = 0
    for row in stream:
        yield row
        count += 1
        if count % 10_000 == 0:
            on_rows(count)
    on_rows(count)
