"""Reasons for a price: exact TreeSHAP contributions, grouped the way a person would say them.

LightGBM's ``pred_contrib=True`` splits one log-price prediction into a bias (the average
prediction over the training data: the typical apartment) and one contribution per feature,
which add up to the prediction exactly. In price terms each group of features multiplies the
baseline by ``exp(contribution)``. The BRL effects are taken in the order shown (largest first):
each is what its factor adds to the price reached so far, so the baseline plus all BRL effects
is the price, to rounding error.
"""

from __future__ import annotations

import math

import numpy as np

from imovsp.features import FEATURES, ROTATED, Property

LOCATION = "location"
CONDO = "condo_fee"
# A field the caller did not give: its effect is what not knowing it does to the price.
NOT_GIVEN = "not given"
_LOCATION_PARTS = ("district", "x_km", "y_km", *ROTATED, "location_estimated")
_LOCATION_PREFIXES = ("nn", "similar", "other_nn")


def group_of(feature: str) -> str:
    """The reason a feature counts towards: district, coordinates and the neighbourhood price
    features are all "location"; the condo fee and the fee per m² are one reason."""
    if feature in _LOCATION_PARTS or feature.startswith(_LOCATION_PREFIXES):
        return LOCATION
    if feature in (CONDO, "condo_per_m2"):
        return CONDO
    return feature


GROUPS = tuple(dict.fromkeys(group_of(f) for f in FEATURES))


def describe(group: str, prop: Property) -> str:
    """The property's value of a reason, readable."""
    if group == LOCATION:
        if prop.latitude is None or prop.longitude is None:
            return f"{prop.district} (coordinates {NOT_GIVEN})"
        return f"{prop.district} ({prop.latitude:.4f}, {prop.longitude:.4f})"
    if group == "size_m2":
        return f"{prop.size_m2:g} m²"
    if group == CONDO:
        return f"R$ {prop.condo_fee:,.0f}/month" if prop.condo_fee else NOT_GIVEN
    value = getattr(prop, group)
    if value is None:
        return NOT_GIVEN
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}"


def grouped(contributions: np.ndarray) -> tuple[float, dict[str, float]]:
    """The bias and the summed log contribution of each group, from one row of
    ``pred_contrib`` output (one column per feature in :data:`FEATURES`, then the bias)."""
    if contributions.shape != (len(FEATURES) + 1,):
        raise ValueError(f"expected {len(FEATURES) + 1} contributions, got {contributions.shape}")
    sums = dict.fromkeys(GROUPS, 0.0)
    for feature, value in zip(FEATURES, contributions[:-1], strict=True):
        sums[group_of(feature)] += float(value)
    return float(contributions[-1]), sums


def effects(baseline: float, log_effects: dict[str, float]) -> list[tuple[str, float, float]]:
    """``(group, effect_pct, effect_brl)`` largest first, starting from ``baseline`` BRL; the
    BRL effects add up to ``baseline * exp(sum of log effects) - baseline``."""
    order = sorted(log_effects, key=lambda g: abs(log_effects[g]), reverse=True)
    out, reached = [], baseline
    for group in order:
        after = reached * math.exp(log_effects[group])
        out.append((group, 100 * math.expm1(log_effects[group]), after - reached))
        reached = after
    return out
