"""A valuation as it is answered: the one JSON object that the API's routes and ``imovsp
predict --json`` both give (see :class:`imovsp.api.schemas.ValuationOut`), prices rounded
alike, a part not asked for or not known as null.

Plain dicts, not response models: on the API's hot path this is several times cheaper, and
the tests check every shape against the schemas.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from imovsp import as_of
from imovsp.as_of import AsOf
from imovsp.geo import far_from_district
from imovsp.valuation import Valuation


def price(value: float | None, negotiation: str) -> float | None:
    """A price as answered: sales to R$ 1,000, rents to R$ 10."""
    if value is None:
        return None
    return round(value, -3 if negotiation == "sale" else -1)


def location_notes(v: Valuation) -> list[str]:
    """Where the point is, when the coordinates given lie far outside the district named (the
    valuation uses the point); nothing otherwise."""
    if v.location_estimated:
        return []
    p = v.property
    note = far_from_district(p.latitude, p.longitude, p.district)
    return [] if note is None else [note]


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def valuation(
    v: Valuation, *, request_id: str | None = None, factor: float = 1.0
) -> dict[str, Any]:
    """The answer of ``v`` with every amount of money multiplied by ``factor`` (1: in the
    money it is in); with ``request_id``, the request's id last. What ``as_of.move(v, factor)``
    would render, to the bit (tested), without the copy of the valuation that moving it makes
    (a fifth of the rendering's time on the hot path): only reasons and comparables are
    moved."""
    p = v.property
    negotiation = p.negotiation
    value = v.price * factor
    low, high = _times(v.price_low, factor), _times(v.price_high, factor)
    median = _times(v.district_median_price_m2, factor)
    # Valuation.width_pct of the moved valuation.
    width = None if low is None or high is None else 100 * (high - low) / value
    moved = v if v.reasons is None and v.comparables is None else as_of.move(v, factor)
    body = {
        "price": price(value, negotiation),
        "currency": "BRL",
        "per_month": negotiation == "rent",
        "negotiation": negotiation,
        "district": p.district,
        "price_m2": round(v.price_m2 * factor, 2),
        "district_median_price_m2": None if median is None else round(median, 2),
        "location_estimated": v.location_estimated,
        "not_given": list(v.not_given),
        "defaulted": list(v.not_given),
        "typical": v.typical,
        "property": p.as_dict(),
        "level": v.level,
        "price_low": price(low, negotiation),
        "price_high": price(high, negotiation),
        "width_pct": None if width is None else round(width, 1),
        "sharpen": [
            {
                "fields": list(s.fields),
                "width_pct": s.width_pct,
                "message": s.message(width),
            }
            for s in v.sharpen
        ],
        "baseline": price(_times(v.baseline, factor), negotiation),
        "reasons": None if moved.reasons is None else [asdict(r) for r in moved.reasons],
        "comparables": None
        if moved.comparables is None
        else [asdict(c) for c in moved.comparables],
        "notes": location_notes(v),
        "model_version": v.model_version,
    }
    if request_id is not None:
        body["request_id"] = request_id
    return body


def in_month(v: Valuation, at: AsOf, *, request_id: str | None = None) -> dict[str, Any]:
    """:func:`valuation` of ``v`` (in the model's month) moved to ``at``'s month, with the
    fields that say which month and factor (comparables keep their listed price beside)."""
    body = valuation(v, request_id=request_id, factor=at.factor)
    body.update(as_of.fields(at, v, price=price))
    if body["comparables"] is not None and v.comparables is not None:
        for shown, listed in zip(body["comparables"], v.comparables, strict=True):
            shown["price_at_data_month"] = listed.price
    return body
