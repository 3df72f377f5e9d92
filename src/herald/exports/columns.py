"""The column layouts of every export, shared by the writers and by `herald analyze` (a light module)."""

from __future__ import annotations

#: Fixed columns of the Altur contact export (SPEC §7.1); tag, then extracted-field columns follow them.
CONTACT_COLUMNS: tuple[str, ...] = (
    "campaign_name",
    "campaign_date",
    "id",
    "contact",
    "name",
    "context",
    "status",
    "retries",
    "calls",
    "billed_duration",
    "last_update",
    "follow_up",
)
#: Fixed columns of the Altur call export in the seed's order (SPEC §7.2); tag and field columns follow.
CALL_COLUMNS: tuple[str, ...] = (
    "campaign_name",
    "campaign_date",
    "id",
    "number_to",
    "contact_name",
    "type",
    "status",
    "answered_by",
    "created_at",
    "started_at",
    "ended_at",
    "duration",
    "billed_duration",
    "recording_url",
)
#: Altur's July-2026 call layout: `ended_by`, `ended_reason` between `ended_at` and `duration`.
CALL_COLUMNS_2026_07 = (*CALL_COLUMNS[:11], "ended_by", "ended_reason", *CALL_COLUMNS[11:])
#: Columns of the Connectly sendout export, in their fixed order (SPEC §7.5).
SENDOUT_COLUMNS: tuple[str, ...] = (
    "customer_external_id",
    "business_id",
    "campaign_name",
    "sendout_id",
    "cnt_session_id",
    "sent_at",
    "delivered_at",
    "read_at",
    "opt_out_at",
    "error_code",
    "error_msg",
    "button_clicks",
    "link_clicks",
    "input_variables",
    "output_variables",
)
