"""``POST /admin/reload``: serve the models directory's current version (bearer token).

Reloading is the server's (:mod:`imovsp.server.reloads`): it swaps this worker's model and,
with several workers, has the supervisor bring the others to it. The server puts the function
that does so in ``app.state.reload`` when it starts; this route checks the token, calls it and
says what happened.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from imovsp.api.routes import JSONBytes
from imovsp.api.schemas import ErrorOut
from imovsp.settings import Settings

Status = Literal["reloaded", "unchanged"]


class ReloadRefusedError(Exception):
    """The current model cannot be served; the old one keeps serving."""


class ReloadOut(BaseModel):
    """What this worker serves after the reload."""

    model_config = ConfigDict(protected_namespaces=())

    status: Status
    model_version: str = Field(description="The version this worker serves now.")
    previous_version: str = Field(description="The version it served before.")
    pid: int = Field(description="The worker process that answered.")
    workers_signalled: bool = Field(
        description="True when the server's supervisor was asked to bring every worker to the "
        "current model (several workers); False for a single-process server."
    )


# ``app.state.reload``: serves the current model in every worker (the argument names what asked,
# for the log) and says so, or raises ReloadRefusedError with the reason.
Reload = Callable[[str], Awaitable[ReloadOut]]


router = APIRouter(prefix="/admin", tags=["operations"])
bearer = HTTPBearer(auto_error=False, description="The token in IMOVSP_ADMIN_TOKEN.")


def authorise(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> None:
    """403 while no admin token is configured; 401 unless the request carries it."""
    settings: Settings = request.app.state.settings
    if settings.admin_token is None:
        raise HTTPException(
            403, "the admin API is disabled: set IMOVSP_ADMIN_TOKEN on the server to enable it"
        )
    expected = settings.admin_token.get_secret_value().encode()
    given = credentials.credentials.encode() if credentials is not None else b""
    if not hmac.compare_digest(given, expected):
        raise HTTPException(
            401,
            "send the admin token as Authorization: Bearer <IMOVSP_ADMIN_TOKEN>",
            headers={"WWW-Authenticate": "Bearer"},
        )


@router.post(
    "/reload",
    response_model=ReloadOut,
    dependencies=[Depends(authorise)],
    responses={
        401: {"model": ErrorOut, "description": "Missing or wrong admin token."},
        403: {"model": ErrorOut, "description": "No admin token configured: disabled."},
        409: {
            "model": ErrorOut,
            "description": "The current model cannot be served (the reason is in `detail`); "
            "the old one keeps serving.",
        },
    },
    summary="Serve the current model",
)
async def reload_model(request: Request) -> Response:
    """Load the models directory's current version and serve it (all workers follow)."""
    reload: Reload = request.app.state.reload
    try:
        out = await reload("POST /admin/reload")
    except ReloadRefusedError as exc:
        served = request.app.state.valuer.version
        raise HTTPException(409, f"{exc}; still serving {served}") from None
    return JSONBytes(out.model_dump())
