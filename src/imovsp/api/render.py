"""Between the HTTP schemas and the Valuer: value a request's property, render the answer.

Responses are plain dicts serialised by orjson: on the hot path this is several times cheaper
than building response models, and the tests check every shape against the schemas.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from imovsp import as_of
from imovsp.api.coalesce import Coalescer, Options, value_together
from imovsp.api.location import location_notes
from imovsp.api.schemas import DEFAULT_LEVEL, OptionsIn, PropertyIn
from imovsp.features import Property
from imovsp.valuer import Valuation, Valuer


class Valuing:
    """Values requests' properties with one Valuer and the request's options."""

    def __init__(self, valuer: Valuer) -> None:
        self.valuer = valuer
        self.coalescer = Coalescer(valuer)

    def options(self, asked: OptionsIn) -> Options:
        """The valuation options of a request's query string."""
        level = DEFAULT_LEVEL if asked.level is None else asked.level
        return Options(level, asked.explain, asked.comparables)

    def prepare(self, item: PropertyIn) -> Property:
        """``item`` as a property the model can value (see :meth:`Valuer.prepare`);
        ``ValueError`` (``UnknownDistrictError`` included) for one the model cannot value."""
        return self.valuer.prepare(item.__dict__)

    def value(self, item: PropertyIn, options: Options) -> Valuation:
        """Value one property now; ``ValueError`` as :meth:`prepare`."""
        return value_together(self.valuer, [self.prepare(item)], options)[0]

    async def ask(self, item: PropertyIn, options: Options) -> Valuation:
        """Value one property on the event loop, together with the others asked for in the
        same turn of it (see :mod:`imovsp.api.coalesce`); ``ValueError`` as :meth:`prepare`."""
        return await self.coalescer.value(self.prepare(item), options)

    def value_all(self, items: list[PropertyIn], options: Options) -> list[Valuation | ValueError]:
        """Value ``items`` together; in place of an item the model cannot value, the error
        that says why."""
        errors: dict[int, ValueError] = {}
        ready: list[Property] = []
        for i, item in enumerate(items):
            try:
                ready.append(self.prepare(item))
            except ValueError as exc:
                errors[i] = exc
        valued = iter(value_together(self.valuer, ready, options))
        return [errors[i] if i in errors else next(valued) for i in range(len(items))]


def _price(value: float | None, negotiation: str) -> float | None:
    if value is None:
        return None
    return round(value, -3 if negotiation == "sale" else -1)


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def valuation_dict(v: Valuation, *, request_id: str, factor: float = 1.0) -> dict[str, Any]:
    """The JSON body of one valuation (see :class:`imovsp.api.schemas.ValuationOut`), every
    amount of money multiplied by ``factor``: what ``as_of.move(v, factor)`` renders, to the
    bit (tested), without the copy of the valuation that moving it makes (a fifth of the
    rendering's time on the hot path)."""
    p = v.property
    negotiation = p.negotiation
    price = v.price * factor
    low, high = _times(v.price_low, factor), _times(v.price_high, factor)
    median = _times(v.district_median_price_m2, factor)
    # Valuation.width_pct of the moved valuation.
    width = None if low is None or high is None else 100 * (high - low) / price
    moved = v if v.reasons is None and v.comparables is None else as_of.move(v, factor)
    return {
        "price": _price(price, negotiation),
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
        "price_low": _price(low, negotiation),
        "price_high": _price(high, negotiation),
        "width_pct": None if width is None else round(width, 1),
        "sharpen": [
            {
                "fields": list(s.fields),
                "width_pct": s.width_pct,
                "message": s.message(width),
            }
            for s in v.sharpen
        ],
        "baseline": _price(_times(v.baseline, factor), negotiation),
        "reasons": None if moved.reasons is None else [asdict(r) for r in moved.reasons],
        "comparables": None
        if moved.comparables is None
        else [asdict(c) for c in moved.comparables],
        "notes": location_notes(v),
        "model_version": v.model_version,
        "request_id": request_id,
    }
