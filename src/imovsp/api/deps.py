"""What routes take from a request: dependencies as ``Annotated`` aliases, and the readers
that the valuation routes use instead of FastAPI's parameter machinery.

FastAPI's dependency solving and body handling cost the valuation routes more than their own
work, so they read the request themselves, with these: the body goes straight from bytes
through pydantic's JSON validator, and the options from the query string through one small
model. The errors are FastAPI's own ``RequestValidationError``, so every route answers bad
input the same way. ``POST /v1/valuations`` uses them from :mod:`imovsp.api.fast_path`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError

from imovsp.api.render import Valuing
from imovsp.api.schemas import NO_OPTIONS, OptionsIn
from imovsp.settings import Settings
from imovsp.valuer import Valuer

Model = TypeVar("Model", bound=BaseModel)


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_valuer(request: Request) -> Valuer:
    valuer: Valuer = request.app.state.valuer
    return valuer


SettingsDep = Annotated[Settings, Depends(get_settings)]
ValuerDep = Annotated[Valuer, Depends(get_valuer)]


def valuing(request: Request) -> Valuing:
    served: Valuing = request.app.state.valuing
    return served


def request_id(request: Request) -> str:
    """The id of this request (from the ``X-Request-ID`` header, or made up on arrival)."""
    rid: str = request.scope["state"]["request_id"]
    return rid


def _invalid(exc: ValidationError, where: str) -> RequestValidationError:
    errors: list[Any] = [
        {**e, "loc": (where, *e["loc"])} for e in exc.errors(include_url=False, include_input=False)
    ]
    return RequestValidationError(errors)


def check_json_media(declared: str | None) -> None:
    """415 unless ``declared`` (the Content-Type header) says JSON."""
    media = (declared or "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        shown = repr(declared) if declared else "none"
        raise HTTPException(
            415, f"send the body as JSON with Content-Type: application/json (got {shown})"
        )


def parse_json(raw: bytes, model: type[Model]) -> Model:
    """``raw`` as ``model``: 400 if malformed, 422 if empty or invalid.

    Strictly: a JSON body means what its schema says, so ``"70"`` is not a number and ``0`` is
    not ``false`` (the old one-hot endpoint, ``POST /``, keeps its own lenient reading).
    """
    if not raw.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "empty"}])
    try:
        return model.model_validate_json(raw, strict=True)
    except ValidationError as exc:
        raise _invalid(exc, "body") from None


async def read_json(request: Request, model: type[Model]) -> Model:
    """The body as ``model``: 415 unless declared JSON, then as :func:`parse_json`."""
    check_json_media(request.headers.get("content-type"))
    return parse_json(await request.body(), model)


def options_from(query: Mapping[str, str]) -> OptionsIn:
    """The valuation options of a query string (422 for unknown or out-of-range ones)."""
    try:
        return OptionsIn.model_validate(dict(query))
    except ValidationError as exc:
        raise _invalid(exc, "query") from None


def read_options(request: Request) -> OptionsIn:
    """The valuation options in the query string (422 for unknown or out-of-range ones)."""
    if not request.scope["query_string"]:
        return NO_OPTIONS
    return options_from(request.query_params)
