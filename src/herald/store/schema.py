"""The database schema (SQLAlchemy Core). Alembic migrations in `migrations/` must produce exactly this."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)


def naive_utc(value: datetime) -> datetime:
    """`value` as the store keeps instants: naive UTC. A naive `value` is refused (its zone would be a guess)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the store; pass UTC-aware datetimes")
    return value.astimezone(UTC).replace(tzinfo=None)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in Python, naive UTC in the database (SQLite has no time zones)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else naive_utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC)


metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

businesses = Table(
    "businesses",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(36), nullable=False, unique=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# API keys: only a SHA-256 of the key is kept (keys are 256 random bits, so a slow hash would add nothing); the
# prefix is what listings show so that a user can tell keys apart.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("business_id", ForeignKey("businesses.id"), nullable=False, index=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("label", String(255), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("revoked_at", UTCDateTime),
)

# An agent of a business (Altur's agent, by its UUID `public_id`): the AgentConfig that campaigns created through the
# API copy (tags, extractable fields, conversion rule, follow-ups).
agents = Table(
    "agents",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(36), nullable=False, unique=True),
    Column("business_id", ForeignKey("businesses.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("config", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
)

# A channel of an agent through a provider (`iph_…` phone, `iwa_…` WhatsApp); credentials in `options` are env
# references (`env:NAME`), never the secrets themselves.
integrations = Table(
    "integrations",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(40), nullable=False, unique=True),
    Column("agent_id", ForeignKey("agents.id"), nullable=False, index=True),
    Column("integration_type", String(16), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("options", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
)

campaigns = Table(
    "campaigns",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("business_id", ForeignKey("businesses.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("archived", Boolean, nullable=False, default=False),
    Column("config", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("cycle_iteration", Integer, nullable=False, default=1),
    Column("cycle_last_iteration_at", UTCDateTime),
    Column("next_cycle_at", UTCDateTime),
    # Set for campaigns created through the API; campaign files embed agent and provider in `config` instead.
    Column("agent_id", ForeignKey("agents.id")),
    Column("integration_id", ForeignKey("integrations.id")),
)

contacts = Table(
    "contacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("external_id", String(255)),
    Column("contact", String(32), nullable=False),
    Column("name", Text, nullable=False, default=""),
    Column("context", Text, nullable=False, default=""),
    Column("input_variables", JSON, nullable=False, default=dict),
    Column("override_agent_name", String(255)),
    Column("override_agent_voice_id", String(255)),
    Column("status", String(16), nullable=False),
    Column("retries", Integer, nullable=False, default=0),
    Column("failed_retries", Integer, nullable=False, default=0),
    Column("final", Boolean, nullable=False, default=False),
    Column("due_at", UTCDateTime),
    Column("respond_by", UTCDateTime),
    Column("follow_up", Boolean, nullable=False, default=False),
    Column("follow_up_attempts", Integer, nullable=False, default=0),
    Column("calls", Integer, nullable=False, default=0),
    Column("billed_seconds", Integer, nullable=False, default=0),
    Column("tags", JSON, nullable=False, default=list),
    Column("extracted", JSON, nullable=False, default=dict),
    Column("opted_out", Boolean, nullable=False, default=False),
    Column("attempts_in_cycle", Integer, nullable=False, default=0),
    # The attempt in flight (a call or message id); a contact is never in two at once.
    Column("inflight_id", Integer),
    Column("lease_expires_at", UTCDateTime),
    Column("current_message_id", Integer),
    Column("last_update", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("campaign_id", "contact"),
    Index(
        "ix_contacts_campaign_due",
        "campaign_id",
        "due_at",
        sqlite_where=text("due_at IS NOT NULL"),
        postgresql_where=text("due_at IS NOT NULL"),
    ),
    Index("ix_contacts_campaign_final", "campaign_id", "final"),
    # A campaign's contacts in the order they were added (the API's pages): read in index order, never sorted.
    Index("ix_contacts_campaign_order", "campaign_id", "id"),
    Index(
        "ix_contacts_campaign_inflight",
        "campaign_id",
        sqlite_where=text("inflight_id IS NOT NULL"),
        postgresql_where=text("inflight_id IS NOT NULL"),
    ),
    Index(
        "ix_contacts_campaign_follow_up",
        "campaign_id",
        sqlite_where=text("follow_up = 1"),
        postgresql_where=text("follow_up"),
    ),
    Index(
        "ix_contacts_campaign_respond_by",
        "campaign_id",
        "respond_by",
        sqlite_where=text("respond_by IS NOT NULL"),
        postgresql_where=text("respond_by IS NOT NULL"),
    ),
)

calls = Table(
    "calls",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(32), nullable=False, unique=True),
    # Looked up by campaign through ix_calls_campaign_order (campaign_id, id).
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("contact_id", ForeignKey("contacts.id"), nullable=False, index=True),
    Column("provider", String(32), nullable=False),
    Column("provider_call_id", String(64)),
    Column("type", String(8), nullable=False, default="outbound"),
    Column("status", String(16), nullable=False),
    Column("answered_by", String(8)),
    Column("ended_by", String(8), nullable=False, default=""),
    Column("ended_reason", String(64), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("ended_at", UTCDateTime),
    Column("duration", Integer, nullable=False, default=0),
    Column("billed_seconds", Integer, nullable=False, default=0),
    Column("recording_url", Text, nullable=False, default=""),
    Column("tags", JSON, nullable=False, default=list),
    Column("extracted", JSON, nullable=False, default=dict),
    Column("follow_up", Boolean, nullable=False, default=False),
    Column("cycle", Integer, nullable=False, default=1),
    # The worker that claimed the call; `start_after` is set while the provider has not yet taken it (a start to
    # make or to retry), and cleared once it has answered.
    Column("worker_id", Integer),
    Column("start_after", UTCDateTime),
    Column("start_tries", Integer, nullable=False, default=0),
    Column("error_code", String(32), nullable=False, default=""),
    Column("error_msg", Text, nullable=False, default=""),
    UniqueConstraint("provider", "provider_call_id"),
    Index(
        "ix_calls_start_after",
        "start_after",
        sqlite_where=text("start_after IS NOT NULL"),
        postgresql_where=text("start_after IS NOT NULL"),
    ),
    # A campaign's calls in the order they were placed (the API's pages): read in index order, never sorted.
    Index("ix_calls_campaign_order", "campaign_id", "id"),
)

sendouts = Table(
    "sendouts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(36), nullable=False, unique=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False),
    Column("cycle", Integer, nullable=False),
    Column("wave", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("campaign_id", "cycle", "wave"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False, index=True),
    Column("contact_id", ForeignKey("contacts.id"), nullable=False, index=True),
    Column("sendout_id", ForeignKey("sendouts.id"), nullable=False),
    Column("session_id", String(36), nullable=False),
    Column("provider", String(32), nullable=False),
    Column("provider_message_id", String(128)),
    Column("template", String(255), nullable=False, default=""),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("delivered_at", UTCDateTime),
    Column("read_at", UTCDateTime),
    Column("opt_out_at", UTCDateTime),
    Column("error_code", String(16), nullable=False, default=""),
    Column("error_msg", Text, nullable=False, default=""),
    Column("button_clicks", JSON, nullable=False, default=list),
    Column("link_clicks", JSON, nullable=False, default=list),
    Column("input_variables", JSON, nullable=False, default=dict),
    Column("output_variables", JSON, nullable=False, default=dict),
    Column("worker_id", Integer),
    Column("start_after", UTCDateTime),
    Column("start_tries", Integer, nullable=False, default=0),
    UniqueConstraint("provider", "provider_message_id"),
    Index(
        "ix_messages_start_after",
        "start_after",
        sqlite_where=text("start_after IS NOT NULL"),
        postgresql_where=text("start_after IS NOT NULL"),
    ),
)

# Tracked links (SPEC §7.5): one unguessable token per tracked link of a sent message. `GET /l/{token}` reads its
# target here (never from the request) and records the click in the inbox as the message's `link_click` event.
tracked_links = Table(
    "tracked_links",
    metadata,
    Column("token", String(64), primary_key=True),
    Column("message_id", ForeignKey("messages.id"), nullable=False),
    Column("link_id", String(64), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("url", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # A message keeps one token per link, however often its start is retried.
    UniqueConstraint("message_id", "link_id"),
)

# Append-only: every provider (and timer) event, stored once before it changes any state. It is also the inbox:
# an event is stored unapplied (`applied_at` NULL) by whichever process receives it, and a worker applies it once
# `available_at` has come (a simulator's scheduled event, or a retry of one that could not be applied yet).
events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("provider", String(32), nullable=False),
    Column("external_id", String(128), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("payload", JSON, nullable=False, default=dict),
    Column("subject", String(16), nullable=False, default="call"),
    Column("attempt_id", String(64), nullable=False, default=""),
    Column("applied_at", UTCDateTime),
    Column("available_at", UTCDateTime),
    Column("tries", Integer, nullable=False, default=0),
    Column("pending_reason", Text, nullable=False, default=""),
    UniqueConstraint("provider", "external_id", "kind"),
    Index(
        "ix_events_pending",
        "available_at",
        sqlite_where=text("applied_at IS NULL"),
        postgresql_where=text("applied_at IS NULL"),
    ),
)

# Processes that claim work (`herald worker`, `herald run`): a heartbeat every few seconds; the claims of one whose
# heartbeat stopped are taken back by the others.
workers = Table(
    "workers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
    Column("stopped_at", UTCDateTime),
    Column("stop_reason", String(64), nullable=False, default=""),
)

suppressions = Table(
    "suppressions",
    metadata,
    Column("business_id", ForeignKey("businesses.id"), primary_key=True),
    Column("contact", String(32), primary_key=True),
    Column("opted_out_at", UTCDateTime, nullable=False),
    Column("source", String(64), nullable=False, default=""),
)

# Campaign-level happenings (status changes, cycle ends): the outbox later read by outgoing webhooks.
campaign_log = Table(
    "campaign_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False, index=True),
    Column("kind", String(32), nullable=False),
    Column("occurred_at", UTCDateTime, nullable=False),
    Column("data", JSON, nullable=False, default=dict),
)

# A campaign's own do-not-call list, beside the business-wide `suppressions`.
campaign_suppressions = Table(
    "campaign_suppressions",
    metadata,
    Column("campaign_id", ForeignKey("campaigns.id"), primary_key=True),
    Column("contact", String(32), primary_key=True),
    Column("opted_out_at", UTCDateTime, nullable=False),
    Column("source", String(64), nullable=False, default=""),
)

# The first answer to each `Idempotency-Key` of a business, replayed for 24 hours. `status_code` is NULL while the
# first request is still being answered, so that a concurrent replay waits or is refused instead of acting twice.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("business_id", ForeignKey("businesses.id"), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status_code", Integer),
    Column("response", Text),
    Column("created_at", UTCDateTime, nullable=False, index=True),
)

# Per API key rate limiting shared by every `herald serve` process (GCRA): `tat` is the key's theoretical arrival
# time in seconds since the epoch.
rate_limits = Table(
    "rate_limits",
    metadata,
    Column("api_key_id", ForeignKey("api_keys.id"), primary_key=True),
    Column("tat", Float, nullable=False),
)

# Where a business wants its outgoing webhooks (SPEC §10). The secret is needed to sign, so it is kept as given.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("public_id", String(36), nullable=False, unique=True),
    Column("business_id", ForeignKey("businesses.id"), nullable=False, index=True),
    Column("url", Text, nullable=False),
    Column("secret", Text, nullable=False),
    Column("events", JSON, nullable=False, default=list),
    Column("filters", JSON, nullable=False, default=dict),
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),
)

# The outbox: one row per event per endpoint, written in the transaction that made the event; `body` is the exact
# bytes signed and sent on every attempt.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("event_id", String(36), nullable=False),
    Column("endpoint_id", ForeignKey("webhook_endpoints.id"), nullable=False, index=True),
    Column("event_type", String(48), nullable=False),
    Column("body", Text, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("worker_id", Integer),
    Column("created_at", UTCDateTime, nullable=False),
    Column("delivered_at", UTCDateTime),
    UniqueConstraint("endpoint_id", "event_id"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        sqlite_where=text("status = 'pending'"),
        postgresql_where=text("status = 'pending'"),
    ),
)

# Every attempt to deliver, kept for `herald webhooks deliveries` and the console.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("delivery_id", ForeignKey("webhook_deliveries.id"), nullable=False, index=True),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer),
    Column("error", Text, nullable=False, default=""),
    Column("duration_ms", Integer, nullable=False, default=0),
)

# --- the web console's sign-in (issue 16) ---------------------------------------------------------------------------

# A person who signs in to the web console, for one business. The e-mail (kept lower-case) is unique across businesses,
# so that signing in names the business; the password is kept only as an Argon2id hash.
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("business_id", ForeignKey("businesses.id"), nullable=False, index=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# A signed-in browser: the cookie holds 256 random bits, of which only the SHA-256 is kept (as for API keys), so a
# copy of the database signs no one in. Expired rows are answered as missing and removed when their user signs in.
web_sessions = Table(
    "web_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
)

# Failed sign-ins per e-mail (known or not, so that a lock-out tells nothing about which addresses exist).
login_failures = Table(
    "login_failures",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, index=True),
    Column("failed_at", UTCDateTime, nullable=False),
)

# A contact file uploaded in the console, kept between its preview and its import (any `herald serve` process may
# answer the next request); after the import it keeps the report and the rejects CSV, and no longer the file.
web_uploads = Table(
    "web_uploads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id"), nullable=False, index=True),
    Column("campaign_id", ForeignKey("campaigns.id"), nullable=False, index=True),
    Column("filename", String(255), nullable=False),
    Column("data", LargeBinary),
    Column("report", JSON),
    Column("rejects_csv", LargeBinary),
    Column("created_at", UTCDateTime, nullable=False),
    Column("imported_at", UTCDateTime),
)

# Provider start rates shared by every worker (GCRA, see store/throttle.py): `key` names an account or a number
# (`twilio:AC…`), `tat` is its theoretical arrival time in seconds since the epoch.
provider_throttles = Table(
    "provider_throttles",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("tat", Float, nullable=False),
)
