"""``POST /v1/feedback``: the real price of a property valued earlier, for monitoring."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from imovsp.api.errors import error_response
from imovsp.api.routes import JSONBytes
from imovsp.api.schemas import ErrorOut, Price, Strict
from imovsp.monitoring import feedback
from imovsp.monitoring.recorder import Recorder

router = APIRouter(prefix="/v1", tags=["feedback"])


class FeedbackIn(Strict):
    """What a property really sold, rented or was listed for."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "request_id": "f161eb5c66984ff3922ac8f7bcc1535d",
                    "actual_price": 790000,
                    "kind": "sold",
                }
            ]
        }
    )

    request_id: str = Field(
        min_length=1,
        max_length=64,
        description="The `request_id` of the valuation (in its answer and `x-request-id`).",
    )
    index: int | None = Field(
        None, ge=0, description="For a batch request: the item's position in the batch."
    )
    actual_price: Price = Field(
        description="The real price in BRL (a monthly rent for rentals), from R$ 100 to "
        "R$ 1,000,000,000."
    )
    kind: Literal["sold", "rented", "listed"] = Field(
        description="`sold` (a sale price), `rented` (a monthly rent) or `listed` (an asking "
        "price or rent)."
    )


class FeedbackOut(BaseModel):
    """The feedback stored, and how far the valuation was from it."""

    model_config = ConfigDict(protected_namespaces=())

    id: int
    request_id: str
    index: int | None = Field(description="The item's position, for a batch request.")
    kind: str
    actual_price: float
    negotiation: str
    model_version: str = Field(description="The model that made the valuation.")
    price: float = Field(
        description="The valuation's price as the client was shown it (unrounded): in the "
        "money of `as_of`, which `actual_price` is taken to be in too."
    )
    as_of: str | None = Field(
        description="The month whose money the valuation was shown in (null: the model's own "
        "month, as the old `POST /` answers and valuations logged before months were)."
    )
    index_factor: float = Field(
        description="The price index factor the valuation was shown with (1: the model's month)."
    )
    error_pct: float = Field(description="price / actual_price - 1, in percent.")
    inside_range: bool | None = Field(
        description="actual_price within the valuation's range as shown (in `as_of`'s money)."
    )
    created_at: str


RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorOut, "description": "Malformed JSON."},
    404: {"model": ErrorOut, "description": "No valuation with that request id (and index)."},
    422: {"model": ErrorOut, "description": "Invalid fields; kind not matching the valuation."},
    503: {"model": ErrorOut, "description": "The prediction log's database is not answering."},
    413: {"model": ErrorOut, "description": "Body over the size limit."},
    429: {"model": ErrorOut, "description": "Too many requests from this client; see Retry-After."},
}


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackOut,
    responses=RESPONSES,
    summary="Report a real price",
)
async def create_feedback(body: FeedbackIn, request: Request) -> Response:
    """Store what a valued property really sold, rented or was listed for."""
    recorder: Recorder = request.app.state.recorder
    try:
        stored = await run_in_threadpool(
            feedback.add,
            recorder,
            request_id=body.request_id,
            index=body.index,
            actual_price=body.actual_price,
            kind=body.kind,
        )
    except feedback.FeedbackError as exc:
        return error_response(request, exc.status, exc.detail)
    return JSONBytes(stored, status_code=201)
