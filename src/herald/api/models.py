"""Pydantic models shared by the REST API's routes: strict (unknown fields refused), every required field marked.

Herald's own `/openapi.json` is generated from these, so it is a stricter version of the reference's document.
"""

from __future__ import annotations

import types
import typing
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer


class Strict(BaseModel):
    """A request or response body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


def _omitted_fields_not_required(schema: dict[str, Any], model: type[BaseModel]) -> None:
    keep: frozenset[str] = getattr(model, "nullable", frozenset())
    omitted = {
        name for name, field in model.model_fields.items() if _allows_none(field.annotation) and name not in keep
    }
    if "required" in schema:
        schema["required"] = [name for name in schema["required"] if name not in omitted]
    for name in omitted:
        prop = schema.get("properties", {}).get(name, {})
        options = prop.get("anyOf")
        if options is not None:
            # Never sent as null: the property is left out instead.
            kept = [option for option in options if option.get("type") != "null"]
            if len(kept) == 1:
                prop.pop("anyOf")
                prop.update(kept[0])
            else:
                prop["anyOf"] = kept


def _allows_none(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return (origin is typing.Union or origin is types.UnionType) and type(None) in typing.get_args(annotation)


class Reference(Strict):
    """A response body in one of the reference's shapes, whose schemas allow null almost nowhere: a field that is
    None is left out of the JSON, unless it is named in `nullable` (null in the reference, or not in it at all)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_omitted_fields_not_required)

    nullable: ClassVar[frozenset[str]] = frozenset()

    # No return annotation: with one, pydantic would document the serialized body as that type instead of the model.
    @model_serializer(mode="wrap")
    def _omit_none(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        data = handler(self)
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None or key in self.nullable}
        return data


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
