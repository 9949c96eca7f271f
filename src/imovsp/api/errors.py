"""Every error answer is JSON with one specific ``detail``; none carries a stack trace."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from imovsp.features import UnknownDistrictError

log = logging.getLogger("imovsp.api")
Handler = Callable[[Request, Exception], Awaitable[Response]]
MAX_LISTED = 5  # field errors spelled out in ``detail``; all are in ``errors``
MESSAGES = {
    "extra_forbidden": "unknown field",
    "missing": "field required",
    "finite_number": "must be a finite number (NaN and Infinity are not allowed)",
}


class PropertyError(Exception):
    """A well-formed property that the model cannot value (unknown district, outside the city)."""

    def __init__(self, detail: str, suggestions: Sequence[str] | None = None) -> None:
        self.detail, self.suggestions = detail, None if suggestions is None else list(suggestions)
        super().__init__(detail)

    @classmethod
    def from_value_error(cls, exc: ValueError) -> PropertyError:
        suggestions = exc.suggestions if isinstance(exc, UnknownDistrictError) else None
        return cls(str(exc), suggestions)


def error_response(
    request: Request,
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    **extra: list[Any],
) -> Response:
    """A JSON error: ``detail``, any ``extra`` lists (field errors, suggestions), the id."""
    body = {"detail": detail, **extra, "request_id": request.scope["state"]["request_id"]}
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


def _location(loc: Sequence[str | int]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query")] or ["body"]
    return ".".join(parts)


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    return [
        {
            "field": _location(e["loc"]),
            "message": MESSAGES.get(e["type"], e["msg"]),
            "type": e["type"],
        }
        for e in errors
    ]


def _validation_detail(errors: list[dict[str, Any]], raw: Sequence[Any]) -> str:
    first = raw[0]
    if tuple(first["loc"]) == ("body",):
        if first["type"] == "missing":
            return "the request body is empty: send a JSON object"
        if first["type"] in ("model_type", "model_attributes_type", "dict_type"):
            return "the request body must be a JSON object"
    listed = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:MAX_LISTED])
    more = len(errors) - MAX_LISTED
    return listed + (f" (and {more} more)" if more > 0 else "")


async def validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    decode = next((e for e in raw if e["type"] == "json_invalid"), None)
    if decode is not None:
        reason = decode.get("ctx", {}).get("error", "not valid JSON")
        return error_response(request, 400, f"malformed JSON: {reason}")
    errors = field_errors(raw)
    return error_response(request, 422, _validation_detail(errors, raw), errors=errors)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    status, detail = exc.status_code, str(exc.detail)
    headers = dict(exc.headers or {})
    if status == 404 and detail == "Not Found":
        detail = f"no such route: {request.method} {request.url.path} (see /docs)"
    elif status == 405:
        allowed = _allowed_methods(request) or headers.get("Allow", headers.get("allow", ""))
        headers = {k: v for k, v in headers.items() if k.lower() != "allow"} | {"Allow": allowed}
        detail = f"method {request.method} is not allowed on {request.url.path}; use {allowed}"
    return error_response(request, status, detail, headers=headers or None)


def _allowed_methods(request: Request) -> str:
    """Every method some route answers on this path. Starlette names only the first route
    whose path matches, and ``/`` has two: the page (GET) and the old API (POST)."""
    methods: set[str] = set()
    pending = list(request.app.router.routes)
    while pending:
        route = pending.pop()
        included = getattr(route, "original_router", None)  # FastAPI's include_router wrapper
        if included is not None:
            pending.extend(included.routes)
            continue
        regex, found = getattr(route, "path_regex", None), getattr(route, "methods", None)
        if regex is not None and found and regex.match(request.url.path):
            methods |= set(found)
    return ", ".join(sorted(methods))


async def property_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PropertyError)
    if exc.suggestions is None:
        return error_response(request, 422, exc.detail)
    return error_response(request, 422, exc.detail, suggestions=exc.suggestions)


async def internal_error(request: Request, exc: Exception) -> Response:
    log.error(
        {"event": "error", "request_id": request.scope.get("state", {}).get("request_id")},
        exc_info=exc,
    )
    return error_response(request, 500, "internal error: it is logged under this request_id")


HANDLERS: tuple[tuple[type[Exception], Handler], ...] = (
    (RequestValidationError, validation_error),
    (HTTPException, http_error),
    (PropertyError, property_error),
)


async def respond(request: Request, exc: Exception) -> Response:
    """The answer to ``exc``, as the app's exception handlers give it (for routes served
    outside FastAPI's exception middleware)."""
    for kind, handler in HANDLERS:
        if isinstance(exc, kind):
            return await handler(request, exc)
    return await internal_error(request, exc)


def install(app: FastAPI) -> None:
    for kind, handler in HANDLERS:
        app.add_exception_handler(kind, handler)
    app.add_exception_handler(Exception, internal_error)
