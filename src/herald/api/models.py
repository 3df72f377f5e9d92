"""Pydantic models shared by the REST API's routes: strict (unknown fields refused), every required field marked.

Herald's own `/openapi.json` is generated from these, so it is a stricter version of the reference's document.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """A request or response body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class ApiErrorBody(Strict):
    """The reference's `CampaignApiError` envelope (routes add `field`, `current_status`, `valid_targets`, …)."""

    model_config = ConfigDict(extra="allow")

    success: bool = False
    error: str
    message: str


class AuthErrorBody(Strict):
    """The reference's `Error`: a 401 for a missing, malformed or revoked key."""

    error: int
    message: str


#: Documented on every route that takes a key.
AUTH_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": AuthErrorBody, "description": "Missing, malformed or revoked API key"},
    429: {"model": ApiErrorBody, "description": "Too many requests for this key; see Retry-After"},
}
