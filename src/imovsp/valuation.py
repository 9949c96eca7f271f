"""What a valuation says: the price, its range, what was not given and would narrow it, the
reasons and the comparable listings. Made by :class:`imovsp.valuer.Valuer`; rendered by the
API, the page and the CLI."""

from __future__ import annotations

from dataclasses import dataclass

from imovsp.features import GROUPS, N_CLASSES, Property, calibration_class
from imovsp.ranges import Calibration

# A hint names a group of fields only when giving it would narrow the range by this many points
# of the price or more ("±22% instead of ±23%" is worth saying; "±23% instead of ±23%" is not).
SHARPEN_POINTS = 2.0


@dataclass(frozen=True, slots=True)
class Reason:
    """What moved a price relative to the typical apartment (filled when asked to explain)."""

    feature: str  # e.g. "size_m2", or "location" for the district and coordinates together
    value: str  # the property's value of it, readable, e.g. "130 m²"
    effect_pct: float  # multiplicative effect in percent: +38.0 means x1.38
    effect_brl: float  # the same effect in BRL


@dataclass(frozen=True, slots=True)
class Comparable:
    """A similar listing of the training data (filled when comparables are asked for)."""

    price: float
    price_m2: float
    distance_km: float  # on the map, from the property valued
    district: str
    size_m2: float
    rooms: int
    toilets: int
    suites: int
    parking: int
    latitude: float
    longitude: float
    condo_fee: float | None  # None: not given in the listing
    elevator: bool
    furnished: bool
    swimming_pool: bool
    new: bool


@dataclass(frozen=True, slots=True)
class Sharpen:
    """A group of fields not given, and what the range would become with it."""

    fields: tuple[str, ...]  # e.g. ("location",) or ("toilets", "suites")
    width_pct: float  # the range's width, (high - low) / price in percent, with them given

    def message(self, width_now: float | None) -> str:
        """e.g. ``give location: ±14% instead of ±23%`` (half the width either side)."""
        now = "" if width_now is None else f" instead of ±{width_now / 2:.0f}%"
        return f"give {', '.join(self.fields)}: ±{self.width_pct / 2:.0f}%{now}"


@dataclass(frozen=True, slots=True)
class Valuation:
    """One property valued: the price and everything said about it.

    Optional parts stay ``None`` until asked for (or until the model supports them), so that
    interfaces can render any of them without changing shape.
    """

    property: Property  # as understood: known district spelling; None for fields not given
    price: float  # BRL; a monthly rent for rentals
    model_version: str
    not_given: tuple[str, ...] = ()  # optional fields priced as unknown (features.OPTIONAL)
    # What is usual for a flat of this size, for the fields not given: context, never priced.
    typical: dict[str, float | bool] | None = None
    location_estimated: bool = False
    price_m2: float = 0.0
    district_median_price_m2: float | None = None
    level: float | None = None  # the range's nominal coverage, e.g. 0.8
    price_low: float | None = None
    price_high: float | None = None
    baseline: float | None = None  # the typical apartment's price that reasons start from
    reasons: tuple[Reason, ...] | None = None
    comparables: tuple[Comparable, ...] | None = None
    # The groups of fields not given that would narrow the range, narrowest first.
    sharpen: tuple[Sharpen, ...] = ()

    def width_pct(self) -> float | None:
        """The range's width, (high - low) / price, in percent."""
        if self.price_low is None or self.price_high is None:
            return None
        return 100 * (self.price_high - self.price_low) / self.price


def sharpen(
    calibration: Calibration,
    spread: float,
    level: float,
    klass: int,
    not_given: tuple[str, ...],
    scale: float,
) -> tuple[Sharpen, ...]:
    """For each group of fields not given (see :data:`imovsp.features.GROUPS`), the width the
    range would have with it given, where that is narrower by :data:`SHARPEN_POINTS` or more;
    narrowest first."""
    if not not_given:
        return ()
    sigma = max(spread, calibration.floor)
    now = calibration.width(sigma, level, klass)
    out = []
    for bit, group in enumerate(GROUPS.values()):
        if klass >> bit & 1:
            continue
        other = klass | 1 << bit
        if other % N_CLASSES == N_CLASSES - 1:  # every field given: the listed ensemble's
            other = calibration_class((), listed=True)
        width = calibration.width_if(sigma, level, klass, other)
        if 100 * (now - width) / scale >= SHARPEN_POINTS:
            fields = tuple(f for f in group if f in not_given)
            out.append(Sharpen(fields, round(100 * width / scale, 1)))
    return tuple(sorted(out, key=lambda s: s.width_pct))
