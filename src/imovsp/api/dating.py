"""The ``/v1`` answers in the money of the month asked for (``as_of``; see :mod:`imovsp.as_of`).

The routes value in the model's month, then render through :func:`valuation_body`, which
moves every amount by the price index and says which month and factor it used.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request

from imovsp import answer, as_of
from imovsp.api.errors import PropertyError
from imovsp.as_of import AsOf
from imovsp.price_index import PriceIndex, PriceIndexError
from imovsp.valuer import Valuation, Valuer


def price_index(request: Request) -> PriceIndex:
    index: PriceIndex = request.app.state.price_index
    return index


def months_for(
    request: Request, valuer: Valuer, asked: str | None
) -> dict[str, AsOf | PriceIndexError]:
    """Per negotiation type, the month and factor of a batch's valuations, or why there is
    none; 422 when the month is malformed or in no series."""
    try:
        return as_of.resolve_all(
            price_index(request), valuer.data_month, valuer.negotiations, asked
        )
    except PriceIndexError as exc:
        raise PropertyError(str(exc)) from None


def valuation_body(v: Valuation, at: AsOf, *, request_id: str) -> dict[str, Any]:
    """The JSON body of ``v`` in ``at``'s month (see :func:`imovsp.answer.in_month`)."""
    return answer.in_month(v, at, request_id=request_id)
