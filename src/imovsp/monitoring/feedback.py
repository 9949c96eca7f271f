"""Feedback: the real price of a property that was valued, tied to its logged valuation."""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from imovsp.monitoring.recorder import Recorder
from imovsp.monitoring.store import KINDS

FLUSH_TIMEOUT = 5.0  # seconds to wait for a valuation still in memory to reach the database
UNAVAILABLE = "the prediction log's database is not answering: try again later"


class FeedbackError(Exception):
    """Feedback that cannot be stored: an HTTP status and a message that says why."""

    def __init__(self, status: int, detail: str) -> None:
        self.status, self.detail = status, detail
        super().__init__(detail)


def made_at(request_id: str) -> float | None:
    """When the service made ``request_id`` (Unix seconds), if it is one of its own ids (a
    UUIDv7, see ``imovsp.server.telemetry.new_request_id``); None for an id a client chose."""
    try:
        parsed = uuid.UUID(hex=request_id)
    except ValueError:
        return None
    if parsed.version != 7 or parsed.hex != request_id.lower():
        return None
    return (parsed.int >> 80) / 1000  # the first 48 bits: milliseconds since the epoch


def may_be_in_memory(request_id: str, *, held_for: float, now: float) -> bool:
    """Whether a valuation of ``request_id`` missing from the database may still be in some
    worker's memory: unless the id says it was made longer ago than a worker holds records."""
    made = made_at(request_id)
    return made is None or now - made < held_for


def shown(amount: float | None, factor: float) -> float | None:
    """A logged amount (the model's month) as the client saw it."""
    return None if amount is None else amount * factor


def _missing(rows: list[Any], index: int | None) -> bool:
    return not rows or (index is not None and all(r.item_index != index for r in rows))


def _choose(rows: list[Any], request_id: str, index: int | None) -> Any:
    """The valuation that feedback names: by batch ``index``, else the request's only (or, if a
    client reused the id, latest) single valuation. ``rows`` come newest first."""
    if index is not None:
        for r in rows:
            if r.item_index == index:
                return r
        indexes = sorted({r.item_index for r in rows if r.item_index is not None})
        if not indexes:
            raise FeedbackError(
                404, f"request {request_id!r} valued one property, not a batch: leave out index"
            )
        listed = ", ".join(map(str, indexes[:10])) + (", ..." if len(indexes) > 10 else "")
        raise FeedbackError(
            404, f"request {request_id!r} has no valuation at index {index} (it has {listed})"
        )
    singles = [r for r in rows if r.item_index is None]
    if singles:
        return singles[0]
    raise FeedbackError(
        422,
        f"request {request_id!r} valued a batch of {len(rows)} properties: say which one with "
        "index (its position in the batch)",
    )


def add(
    recorder: Recorder, *, request_id: str, index: int | None, actual_price: float, kind: str
) -> dict[str, Any]:
    """Store feedback on the valuation of ``request_id`` (and ``index`` in a batch); what was
    stored, with the valuation's error. Raises :class:`FeedbackError` (404, 422, 503)."""
    store = recorder.store
    if store is None:
        raise FeedbackError(
            503,
            "the prediction log is turned off (IMOVSP_PREDICTION_LOG=false): nothing to tie "
            "feedback to",
        )
    try:
        if not recorder.ready:  # the writer has not yet brought the schema up to date
            recorder.flush(FLUSH_TIMEOUT)
        rows = store.find_valuations(request_id)
        written = True
        if _missing(rows, index):
            # It may still be in memory, on its way to the database: this process writes
            # what it holds at once; other workers (and replicas) write theirs within their
            # flush interval, so it is looked for again until then, unless the request id is
            # one of ours and says the valuation is older than that.
            written = recorder.flush(FLUSH_TIMEOUT)
            held_for = 2 * recorder.interval + 0.5
            deadline = time.monotonic() + held_for
            rows = store.find_valuations(request_id)
            if not may_be_in_memory(request_id, held_for=held_for + 1, now=time.time()):
                deadline = 0.0
            while _missing(rows, index) and time.monotonic() < deadline:
                time.sleep(0.05)
                rows = store.find_valuations(request_id)
        if not rows:
            if not written:
                raise FeedbackError(503, UNAVAILABLE)
            raise FeedbackError(
                404, f"no valuation with request id {request_id!r} in the prediction log"
            )
        valuation = _choose(rows, request_id, index)
        expected = KINDS[kind]
        if expected is not None and valuation.negotiation != expected:
            raise FeedbackError(
                422,
                f"kind {kind!r} is for a {expected}, but request {request_id!r} valued a "
                f"{valuation.negotiation}: use {'rented' if expected == 'sale' else 'sold'!r} "
                "or 'listed'",
            )
        feedback_id, at = store.insert_feedback(
            valuation_id=valuation.id, request_id=request_id, actual_price=actual_price, kind=kind
        )
    except SQLAlchemyError:
        raise FeedbackError(503, UNAVAILABLE) from None
    # The client's price is in the money of the answer it saw: compare it with that answer
    # (the log keeps the model's month; index_factor moves it to the month shown).
    factor = valuation.index_factor
    price = valuation.price * factor
    low, high = shown(valuation.price_low, factor), shown(valuation.price_high, factor)
    return {
        "id": feedback_id,
        "request_id": request_id,
        "index": valuation.item_index,
        "kind": kind,
        "actual_price": actual_price,
        "negotiation": valuation.negotiation,
        "model_version": valuation.model_version,
        "price": price,
        "as_of": valuation.as_of,
        "index_factor": factor,
        "error_pct": round(100 * (price / actual_price - 1), 2),
        "inside_range": None if low is None or high is None else bool(low <= actual_price <= high),
        "created_at": at.isoformat(timespec="seconds") + "Z",
    }
