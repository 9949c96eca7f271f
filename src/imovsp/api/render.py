"""Between the HTTP schemas and the Valuer: value a request's property, render the answer
(:mod:`imovsp.answer`, which the CLI gives too), serialised by orjson."""

from __future__ import annotations

import asyncio
from typing import Any

from imovsp import answer
from imovsp.api.coalesce import Coalescer, Options, value_together
from imovsp.api.schemas import NO_OPTIONS, OptionsIn, PropertyIn
from imovsp.bounds import DEFAULT_LEVEL
from imovsp.features import Property
from imovsp.valuer import Valuation, Valuer

DEFAULT_OPTIONS = Options(DEFAULT_LEVEL, NO_OPTIONS.explain, NO_OPTIONS.comparables)


class Valuing:
    """Values requests' properties with one Valuer and the request's options."""

    def __init__(self, valuer: Valuer) -> None:
        self.valuer = valuer
        self.coalescer = Coalescer(valuer)

    def options(self, asked: OptionsIn) -> Options:
        """The valuation options of a request's query string."""
        if asked is NO_OPTIONS:  # most requests: no query string
            return DEFAULT_OPTIONS
        level = DEFAULT_LEVEL if asked.level is None else asked.level
        return Options(level, asked.explain, asked.comparables)

    def prepare(self, item: PropertyIn) -> Property:
        """``item`` as a property the model can value (see :meth:`Valuer.prepare`);
        ``ValueError`` (``UnknownDistrictError`` included) for one the model cannot value."""
        return self.valuer.prepare(item.__dict__)

    def value(self, item: PropertyIn, options: Options) -> Valuation:
        """Value one property now; ``ValueError`` as :meth:`prepare`."""
        return value_together(self.valuer, [self.prepare(item)], options)[0]

    def ask(self, item: PropertyIn, options: Options) -> asyncio.Future[Valuation]:
        """Value one property on the event loop, together with the others asked for in the
        same turn of it (see :mod:`imovsp.api.coalesce`): its valuation, to await;
        ``ValueError`` as :meth:`prepare`, at once."""
        return self.coalescer.value(self.prepare(item), options)

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


def valuation_dict(v: Valuation, *, request_id: str) -> dict[str, Any]:
    """The JSON body of one valuation (see :func:`imovsp.answer.valuation`)."""
    return answer.valuation(v, request_id=request_id)
