"""The REST API's error bodies, in the reference's shapes, and the handlers that make every failure one of them.

Campaign API errors are `{"success": false, "error": KEY, "message": …}` (Altur's `CampaignApiError`, with extra
keys such as `field`, `current_status` and `valid_targets` where the reference has them); an authentication failure
is `{"error": 401, "message": …}` (the reference's `Error`). Nothing a client sends may produce a 5xx: bad JSON,
wrong types and unknown fields are 400s, an oversized body is 413, and an unexpected exception is logged and
answered with the same envelope (`SERVER_ERROR`), never a traceback.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("herald.api")

#: The error key of a bare HTTP status (a route that does not exist, a method it does not take, …).
_STATUS_KEYS = {
    400: "INVALID_REQUEST",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
}


class ApiError(Exception):
    """An answer other than success: raise it from a route; `extra` keys are merged into the body."""

    def __init__(
        self,
        status: int,
        key: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.key = key
        self.message = message
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        """The JSON body of this error."""
        return {"success": False, "error": self.key, "message": self.message, **self.extra}

    def response(self) -> JSONResponse:
        """This error as a response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)

    def drf_body(self) -> dict[str, list[str]]:
        """This error in Django REST framework's shape: each field with its messages (`non_field_errors` else)."""
        found: dict[str, list[str]] = {}
        for problem in self.extra.get("errors") or []:
            found.setdefault(str(problem["field"]), []).append(str(problem["message"]))
        if not found:
            found[str(self.extra.get("field") or "non_field_errors")] = [self.message]
        return found

    def response_for(self, method: str, path: str) -> JSONResponse:
        """This error as a response to `method path`: a 400 of a route the reference answers in DRF's shape takes
        that shape, anything else the envelope."""
        if self.status == 400 and drf_style(method, path):
            return JSONResponse(self.drf_body(), status_code=400, headers=self.headers)
        return self.response()


#: The reference answers a 400 of these routes in Django REST framework's shape ({field: [messages]}, its
#: `DRFBadRequestError`): listing campaigns, a campaign's contacts (list and batch) and its calls.
_DRF_ROUTES = re.compile(r"^/api/v1\.0/campaigns(?:/(?P<id>[^/]+)/(?P<sub>contacts|calls))?/?$")


def drf_style(method: str, path: str) -> bool:
    """Whether a 400 of `method path` takes the DRF shape."""
    match = _DRF_ROUTES.match(path)
    if match is None:
        return False
    if match.group("sub") is None:
        return method == "GET"
    return method == "GET" or (method == "POST" and match.group("sub") == "contacts")


class Unauthorized(Exception):
    """A missing, malformed, unknown or revoked API key: the reference's `Error` body with status 401."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def response(self) -> JSONResponse:
        """This error as a response."""
        return JSONResponse(
            {"error": 401, "message": self.message},
            status_code=401,
            headers={"WWW-Authenticate": "api-key"},
        )


def not_found(what: str, key: str = "NOT_FOUND") -> ApiError:
    """The 404 for anything missing or belonging to another business (the two are never told apart)."""
    return ApiError(404, key, f"{what} not found")


def _location(loc: tuple[Any, ...]) -> str:
    parts = [str(part) for part in loc if part not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_messages(error: RequestValidationError) -> list[dict[str, str]]:
    """One {field, message} per problem of a request FastAPI could not validate."""
    problems = []
    for item in error.errors():
        message = str(item.get("msg", "invalid"))
        if item.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        problems.append({"field": _location(tuple(item.get("loc", ()))), "message": message})
    return problems


def install(app: FastAPI) -> None:
    """Make every failure of `app` answer in the reference's shapes."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, error: ApiError) -> JSONResponse:
        return error.response_for(request.method, request.url.path)

    @app.exception_handler(Unauthorized)
    async def _unauthorized(request: Request, error: Unauthorized) -> JSONResponse:
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = validation_messages(error)
        message = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return ApiError(400, "INVALID_REQUEST", message, errors=problems).response_for(request.method, request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> JSONResponse:
        key = _STATUS_KEYS.get(error.status_code, "INVALID_REQUEST" if error.status_code < 500 else "SERVER_ERROR")
        message = error.detail if isinstance(error.detail, str) else key.lower().replace("_", " ")
        failure = ApiError(error.status_code, key, message, headers=getattr(error, "headers", None))
        return failure.response_for(request.method, request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> JSONResponse:
        log.exception("unexpected error answering %s %s", request.method, request.url.path)
        return ApiError(500, "SERVER_ERROR", "unexpected server error; it has been logged").response()
