"""Valuations in the money of a chosen month: the model's figure moved by the price index.

The Valuer answers in the money of its data month (the month of its listings, or the base
month they were brought to; see :attr:`imovsp.valuer.Valuer.data_month`). Every interface
moves that answer, as one last step, to the month asked for (``as_of``), by default the latest
month that the index covers for the negotiation type: the price, its range, the reasons' BRL
amounts, the typical flat they start from, the price per m² and the district's median, and the
comparables' prices are all multiplied by the same factor (1 at the data month), so that
everything on one answer is in one month's money.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

from imovsp.price_index import CREDIT, PriceIndex, PriceIndexError, month_pt
from imovsp.valuer import Valuation

FACTOR_DECIMALS = 6
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class AsOf:
    """The month a valuation is given in, and the multiplier from the model's month to it."""

    month: str  # YYYY-MM
    factor: float
    data_month: str  # the model's month, where the factor is 1
    basis: str  # in Portuguese, e.g. "valor de agosto de 2025, corrigido pelo Índice FipeZAP..."


def basis(month: str, data_month: str) -> str:
    """``valor de agosto de 2025, corrigido pelo Índice FipeZAP desde abril de 2019``."""
    if month == data_month:
        return f"valor de {month_pt(month)}, mês dos anúncios do modelo"
    return f"valor de {month_pt(month)}, corrigido pelo Índice FipeZAP desde {month_pt(data_month)}"


def check_model(index: PriceIndex, data_month: str) -> None:
    """Refuse (:class:`PriceIndexError`) an index that cannot move the model's prices."""
    for n in ("sale", "rent"):
        if data_month not in index.values[n]:
            raise PriceIndexError(
                f"the price index {index.source} does not cover the model's data month "
                f"{data_month} ({index.coverage()})"
            )


# On the hot path of every valuation: the same few questions, asked again and again, of an
# index that never changes (it is compared by identity). Malformed months raise: not cached.
@lru_cache(maxsize=4096)
def resolve(index: PriceIndex, data_month: str, negotiation: str, as_of: str | None) -> AsOf:
    """The month and factor of a ``negotiation`` valuation asked for ``as_of`` (``None``: the
    latest month of the index); :class:`PriceIndexError` that names the months available."""
    try:
        month = index.last(negotiation) if as_of is None else index.check(negotiation, as_of)
        factor = index.factor(negotiation, data_month, month)
        return AsOf(month, factor, data_month, basis(month, data_month))
    except PriceIndexError as exc:
        raise PriceIndexError(f"as_of: {exc}; the price index covers {index.coverage()}") from None


def resolve_all(
    index: PriceIndex, data_month: str, negotiations: tuple[str, ...], as_of: str | None
) -> dict[str, AsOf | PriceIndexError]:
    """:func:`resolve` for each negotiation type: its month, or why it has none. Raises
    :class:`PriceIndexError` when ``as_of`` is malformed or no type has that month."""
    found: dict[str, AsOf | PriceIndexError] = {}
    for n in negotiations:
        try:
            found[n] = resolve(index, data_month, n, as_of)
        except PriceIndexError as exc:
            found[n] = exc
    if all(isinstance(v, PriceIndexError) for v in found.values()):
        raise next(iter(found.values()))  # type: ignore[misc]
    return found


def _times(value: float | None, factor: float) -> float | None:
    return None if value is None else value * factor


def _with(obj: T, **changes: Any) -> T:
    """A copy of a frozen slots dataclass with ``changes``, built field by field: a third of
    the time of :func:`dataclasses.replace` (which runs ``__init__``) on the hot path, and it
    keeps any field added to the class later."""
    new = object.__new__(type(obj))
    for name in type(obj).__slots__:  # type: ignore[attr-defined]
        object.__setattr__(new, name, changes[name] if name in changes else getattr(obj, name))
    return new


def move(v: Valuation, factor: float) -> Valuation:
    """``v`` with every amount of money multiplied by ``factor``. (The API's renderer moves
    the same amounts itself, ``imovsp.api.render.valuation_dict``: a test holds the two
    equal.)"""
    if factor == 1.0:
        return v
    return _with(
        v,
        price=v.price * factor,
        price_m2=v.price_m2 * factor,
        district_median_price_m2=_times(v.district_median_price_m2, factor),
        price_low=_times(v.price_low, factor),
        price_high=_times(v.price_high, factor),
        baseline=_times(v.baseline, factor),
        reasons=None
        if v.reasons is None
        else tuple(_with(r, effect_brl=r.effect_brl * factor) for r in v.reasons),
        comparables=None
        if v.comparables is None
        else tuple(
            _with(c, price=c.price * factor, price_m2=c.price_m2 * factor) for c in v.comparables
        ),
    )


def fields(at: AsOf, original: Valuation, *, price: Any) -> dict[str, Any]:
    """What an answer says about its month: ``as_of``, ``index_factor``, the model's month, the
    price in it (``price`` rounds as the answer does) and the basis, in Portuguese."""
    return {
        "as_of": at.month,
        "index_factor": round(at.factor, FACTOR_DECIMALS),
        "data_month": at.data_month,
        "price_at_data_month": price(original.price, original.property.negotiation),
        "index_basis": at.basis,
        "index_credit": CREDIT,
    }
