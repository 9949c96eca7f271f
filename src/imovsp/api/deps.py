"""Dependencies of the routes, as ``Annotated`` aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Query, Request

from imovsp.api.render import DEFAULT_LEVEL, Options, Valuing
from imovsp.settings import Settings
from imovsp.valuer import Valuer

JSON_TYPES = ("application/json",)


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_valuer(request: Request) -> Valuer:
    valuer: Valuer = request.app.state.valuer
    return valuer


def get_valuing(request: Request) -> Valuing:
    valuing: Valuing = request.app.state.valuing
    return valuing


def request_id(request: Request) -> str:
    """The id of this request (from the ``X-Request-ID`` header, or made up on arrival)."""
    rid: str = request.scope["state"]["request_id"]
    return rid


def require_json(request: Request) -> None:
    """Refuse (415) a body that is not declared as JSON."""
    declared = request.headers.get("content-type")
    media = (declared or "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        shown = repr(declared) if declared else "none"
        raise HTTPException(
            415,
            f"send the body as JSON with Content-Type: application/json (got {shown})",
        )


def get_options(
    level: Annotated[
        float | None,
        Query(
            ge=0.5,
            le=0.95,
            allow_inf_nan=False,
            description=(
                f"Coverage of the price range, {DEFAULT_LEVEL} when omitted: the share of "
                "similar apartments whose price falls within [price_low, price_high]."
            ),
        ),
    ] = None,
    explain: Annotated[
        bool, Query(description="Add `reasons`: what moved the price from the typical flat.")
    ] = False,
    comparables: Annotated[
        int, Query(ge=0, le=20, description="Add this many similar listings as `comparables`.")
    ] = 0,
) -> Options:
    return Options(level=level, explain=explain, comparables=comparables)


SettingsDep = Annotated[Settings, Depends(get_settings)]
ValuerDep = Annotated[Valuer, Depends(get_valuer)]
ValuingDep = Annotated[Valuing, Depends(get_valuing)]
RequestId = Annotated[str, Depends(request_id)]
OptionsDep = Annotated[Options, Depends(get_options)]
JsonBody = Depends(require_json)
