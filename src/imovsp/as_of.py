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

from dataclasses import dataclass, replace
from typing import Any

from imovsp.price_index import CREDIT, PriceIndex, PriceIndexError, month_pt
from imovsp.valuer import Valuation

FACTOR_DECIMALS = 6


@dataclass(frozen=True, slots=True)
class AsOf:
    """The month a valuation is given in, and the multiplier from the model's month to it."""

    month: str  # YYYY-MM
    factor: float
    data_month: str  # the model's month, where the factor is 1

    def basis(self) -> str:
        """``valor de agosto de 2025, corrigido pelo Índice FipeZAP desde abril de 2019``."""
        if self.month == self.data_month:
            return f"valor de {month_pt(self.month)}, mês dos anúncios do modelo"
        return (
            f"valor de {month_pt(self.month)}, corrigido pelo Índice FipeZAP desde "
            f"{month_pt(self.data_month)}"
        )


def check_model(index: PriceIndex, data_month: str) -> None:
    """Refuse (:class:`PriceIndexError`) an index that cannot move the model's prices."""
    for n in ("sale", "rent"):
        if data_month not in index.values[n]:
            raise PriceIndexError(
                f"the price index {index.source} does not cover the model's data month "
                f"{data_month} ({index.coverage()})"
            )


def resolve(index: PriceIndex, data_month: str, negotiation: str, as_of: str | None) -> AsOf:
    """The month and factor of a ``negotiation`` valuation asked for ``as_of`` (``None``: the
    latest month of the index); :class:`PriceIndexError` that names the months available."""
    try:
        month = index.last(negotiation) if as_of is None else index.check(negotiation, as_of)
        return AsOf(month, index.factor(negotiation, data_month, month), data_month)
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


def move(v: Valuation, factor: float) -> Valuation:
    """``v`` with every amount of money multiplied by ``factor``."""
    if factor == 1.0:
        return v
    return replace(
        v,
        price=v.price * factor,
        price_m2=v.price_m2 * factor,
        district_median_price_m2=_times(v.district_median_price_m2, factor),
        price_low=_times(v.price_low, factor),
        price_high=_times(v.price_high, factor),
        baseline=_times(v.baseline, factor),
        reasons=None
        if v.reasons is None
        else tuple(replace(r, effect_brl=r.effect_brl * factor) for r in v.reasons),
        comparables=None
        if v.comparables is None
        else tuple(
            replace(c, price=c.price * factor, price_m2=c.price_m2 * factor) for c in v.comparables
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
        "index_basis": at.basis(),
        "index_credit": CREDIT,
    }
