"""Herald's /openapi.json: what FastAPI generates, told the truth about how validation errors are answered."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from herald.api.models import ApiErrorBody

_ERROR_REF = {"$ref": "#/components/schemas/ApiErrorBody"}


def _document(app: FastAPI) -> dict[str, Any]:
    from fastapi.openapi.utils import get_openapi

    document = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, servers=app.servers
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("ApiErrorBody", ApiErrorBody.model_json_schema(ref_template="#/components/schemas/{model}"))
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    for methods in document.get("paths", {}).values():
        for operation in methods.values():
            responses = operation.get("responses", {})
            # Requests FastAPI cannot validate are answered 400 in the API's error envelope (herald.api.errors).
            if responses.pop("422", None) is not None and "400" not in responses:
                responses["400"] = {
                    "description": "Invalid request",
                    "content": {"application/json": {"schema": _ERROR_REF}},
                }
    return document


def install(app: FastAPI) -> None:
    """Serve the corrected document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _document(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
