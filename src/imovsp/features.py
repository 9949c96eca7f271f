"""What the model's input is: the feature names, the fields a person may give and leave out,
the classes of fields given that ranges are calibrated on, :class:`Property` (one flat's
fields) and the numpy columns that :class:`imovsp.builder.FeatureBuilder` turns into features.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from imovsp import data

# Local flat projection around the city centre, in km: good to a few metres at city scale.
ORIGIN = (-23.55, -46.63)
KM_PER_DEG_LAT = 111.2
KM_PER_DEG_LON = 111.2 * float(np.cos(np.radians(-ORIGIN[0])))

NUMERIC = ("size_m2", "rooms", "toilets", "suites", "parking", "condo_fee")
FLAGS = ("elevator", "furnished", "swimming_pool", "new")
NEIGHBOURS = (5, 20)  # neighbour counts for the local price-per-m² features
SIMILAR = 10  # neighbours in location-and-size space
OTHER = 20  # neighbours from the other negotiation type
SIZE_WEIGHT_KM = 3.0  # one unit of log size counts as this many km when finding similar flats
# The coordinates also seen along axes turned by these angles (degrees): trees split along one
# axis at a time, and prices in the city change along diagonals as much as east-west.
ROTATIONS = (30, 45, 60)
_TURNS = tuple((float(np.cos(np.radians(a))), float(np.sin(np.radians(a)))) for a in ROTATIONS)
ROTATED = tuple(f"{axis}_rot{a}_km" for a in ROTATIONS for axis in "xy")
FEATURES = (
    *NUMERIC,
    *FLAGS,
    "x_km",
    "y_km",
    *ROTATED,
    "location_estimated",
    "condo_per_m2",
    "district",
    *(f"nn{k}_log_price_m2" for k in NEIGHBOURS),
    *(f"nn{k}_distance_km" for k in NEIGHBOURS),
    f"similar{SIMILAR}_log_price_m2",
    # The single most similar listing: when it is the same flat listed again, it says a lot.
    "similar1_log_price_m2",
    "similar1_distance",
    # Local price level of the other market (rent near a sale, sale near a rent): location
    # quality seen through twice the listings.
    f"other_nn{OTHER}_log_price_m2",
)
CATEGORICAL = ("district",)
# Fields a caller may leave out. One not given reaches the model as unknown (NaN), never as an
# invented value: the model is trained on copies of the listings with fields masked the way
# people leave them out (see :data:`FIELD_SETS`). What is typical for the size is only shown.
TYPICAL = ("rooms", "toilets", "suites", "parking", "condo_fee", *FLAGS)
COUNTS = ("rooms", "toilets", "suites", "parking")
LOCATION = "location"  # latitude and longitude, given together or not at all
OPTIONAL = (*TYPICAL, LOCATION)
# The ways people describe a flat, each as the optional fields it gives (negotiation, district
# and size are always given). Training masks copies of every listing to each of these, and
# evaluation reports each.
FIELD_SETS: dict[str, tuple[str, ...]] = {
    "complete": OPTIONAL,
    "no_location": TYPICAL,
    "no_condo_fee": tuple(f for f in OPTIONAL if f != "condo_fee"),
    "basic": COUNTS,
    "district_size": (),
}
# The groups of fields whose presence sets a range's calibration class (one bit each): a class
# holds the rows that gave the same groups, whatever their other fields.
GROUPS = {LOCATION: (LOCATION,), "condo_fee": ("condo_fee",), "counts": COUNTS, "flags": FLAGS}
N_CLASSES = 2 ** len(GROUPS)


_pattern_classes: dict[tuple[str, ...], int] = {}  # pattern_class's answers, by not_given


def pattern_class(not_given: Sequence[str]) -> int:
    """The calibration class of a property whose ``not_given`` fields are unknown: one bit per
    group of :data:`GROUPS` that is given whole."""
    # Remembered: every valuation asks, and properties leave out few different sets of fields
    # (at most one per subset of OPTIONAL, in its order, from Property.not_given).
    key = tuple(not_given)
    found = _pattern_classes.get(key)
    if found is None:
        missing = set(key)
        found = sum(
            1 << bit for bit, group in enumerate(GROUPS.values()) if not missing.intersection(group)
        )
        if len(_pattern_classes) < 2 ** len(OPTIONAL):
            _pattern_classes[key] = found
    return found


def calibration_class(not_given: Sequence[str], *, listed: bool) -> int:
    """A range's calibration class: :func:`pattern_class`, and apart from it the flats priced
    by the listed ensemble (see :func:`listed_columns`), whose errors are their own."""
    return pattern_class(not_given) + (N_CLASSES if listed else 0)


def listed_columns(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """Which rows of feature columns the ensemble trained on the listings as listed prices:
    those that give every field. A condo fee of 0 counts as given here: it is what the
    listings themselves say when the fee is unknown or none, and that ensemble learnt what it
    means in them; a fee not given at all (NaN) is a person's "don't know"."""
    given = (
        ~np.isnan(cols["condo_fee"]) & ~np.isnan(cols["latitude"]) & ~np.isnan(cols["longitude"])
    )
    for name in (*COUNTS, *FLAGS):
        given &= ~np.isnan(cols[name])
    out: np.ndarray = given
    return out


def calibration_classes(cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """:func:`calibration_class` of every row of feature columns, computed on whole columns
    (batch scoring and training value many rows: no tuple of names per row)."""
    given = {
        LOCATION: ~(np.isnan(cols["latitude"]) | np.isnan(cols["longitude"])),
        "condo_fee": cols["condo_fee"] > 0,
    }
    for name in (*COUNTS, *FLAGS):
        given[name] = ~np.isnan(cols[name])
    klass = np.zeros(len(cols["size_m2"]), dtype=np.int64)
    for bit, group in enumerate(GROUPS.values()):
        whole = np.logical_and.reduce([given[name] for name in group])
        klass += whole.astype(np.int64) << bit
    out: np.ndarray = klass + N_CLASSES * listed_columns(cols).astype(np.int64)
    return out


def raw_columns(field: str) -> tuple[str, ...]:
    """The feature columns of an optional field: ``location`` is latitude and longitude."""
    return ("latitude", "longitude") if field == LOCATION else (field,)


def mask(cols: Mapping[str, np.ndarray], not_given: Sequence[str]) -> dict[str, np.ndarray]:
    """Copy of feature columns with the ``not_given`` fields (of :data:`OPTIONAL`) unknown."""
    out = dict(cols)
    for name in not_given:
        for column in raw_columns(name):
            out[column] = np.full(len(cols["size_m2"]), np.nan)
    return out


def not_given_columns(cols: Mapping[str, np.ndarray]) -> list[tuple[str, ...]]:
    """Per row of feature columns, the optional fields that are unknown (NaN; a condo fee of
    0 is unknown, as in the published listings)."""
    unknown = {name: np.isnan(cols[name]) for name in TYPICAL if name != "condo_fee"}
    unknown["condo_fee"] = ~(cols["condo_fee"] > 0)
    unknown[LOCATION] = np.isnan(cols["latitude"]) | np.isnan(cols["longitude"])
    return [
        tuple(name for name in OPTIONAL if unknown[name][i]) for i in range(len(cols["size_m2"]))
    ]


SIZE_BINS = (0.0, 40.0, 50.0, 60.0, 75.0, 90.0, 120.0, 160.0, 220.0, 320.0, np.inf)
# Raw column of the published schema for each property field.
RAW_NAMES = {
    "size_m2": "Size",
    "rooms": "Rooms",
    "toilets": "Toilets",
    "suites": "Suites",
    "parking": "Parking",
    "condo_fee": "Condo",
    "elevator": "Elevator",
    "furnished": "Furnished",
    "swimming_pool": "Swimming Pool",
    "new": "New",
    "district": data.DISTRICT,
    "negotiation": data.NEGOTIATION,
    "latitude": data.LATITUDE,
    "longitude": data.LONGITUDE,
}


class UnknownDistrictError(ValueError):
    """A district the model has never seen; carries the closest known names."""

    def __init__(self, name: str, suggestions: Sequence[str]) -> None:
        self.name, self.suggestions = name, list(suggestions)
        hint = f"; closest known: {', '.join(self.suggestions)}" if self.suggestions else ""
        super().__init__(f"unknown district {name!r}{hint}")


_NUMBER = (int, float)  # what a size, a count or a fee may be (bool is an int)


@dataclass(frozen=True, slots=True)
class Property:
    """One apartment to value. A field that is ``None`` was not given: the model prices it as
    unknown (a ``condo_fee`` of 0 is unknown too, as in the published listings)."""

    negotiation: str
    district: str
    size_m2: float
    rooms: int | None = None
    toilets: int | None = None
    suites: int | None = None
    parking: int | None = None
    condo_fee: float | None = None
    elevator: bool | None = None
    furnished: bool | None = None
    swimming_pool: bool | None = None
    new: bool | None = None
    latitude: float | None = None
    longitude: float | None = None

    def __post_init__(self) -> None:
        if self.negotiation not in data.NEGOTIATIONS:
            raise ValueError(f"negotiation must be sale or rent, not {self.negotiation!r}")
        if not (isinstance(self.size_m2, _NUMBER) and 0 < self.size_m2 < math.inf):
            raise ValueError(f"size_m2 must be a number > 0, not {self.size_m2!r}")
        # The counts written out (see as_dict); a whole number as an int, as most are given.
        for name, value in (
            ("rooms", self.rooms),
            ("toilets", self.toilets),
            ("suites", self.suites),
            ("parking", self.parking),
        ):
            if value is None or (type(value) is int and value >= 0):
                continue
            if not (isinstance(value, _NUMBER) and value >= 0 and float(value).is_integer()):
                raise ValueError(f"{name} must be a whole number ≥ 0, not {value!r}")
        if self.condo_fee is not None and not (
            isinstance(self.condo_fee, _NUMBER) and 0 <= self.condo_fee < math.inf
        ):
            raise ValueError(f"condo_fee must be a number ≥ 0, not {self.condo_fee!r}")

    def as_dict(self) -> dict[str, Any]:
        """Its fields as JSON values: counts as whole numbers, flags as booleans, a field not
        given (an unknown condo fee included) as ``None`` (what the API answers and the
        prediction log stores)."""
        # Written out field by field (COUNTS, then FLAGS): every answer and every prediction
        # log row builds one, and the loops over the names took twice as long.
        return {
            "negotiation": self.negotiation,
            "district": self.district,
            "size_m2": self.size_m2,
            "rooms": _maybe(int, self.rooms),
            "toilets": _maybe(int, self.toilets),
            "suites": _maybe(int, self.suites),
            "parking": _maybe(int, self.parking),
            "condo_fee": self.condo_fee or None,
            "elevator": _maybe(bool, self.elevator),
            "furnished": _maybe(bool, self.furnished),
            "swimming_pool": _maybe(bool, self.swimming_pool),
            "new": _maybe(bool, self.new),
            "latitude": self.latitude,
            "longitude": self.longitude,
        }

    @property
    def listed(self) -> bool:
        """Whether the ensemble of the listings as listed prices it (see
        :func:`listed_columns`): every field given, a condo fee of 0 included."""
        # TYPICAL, written out (see as_dict).
        return not (
            self.latitude is None
            or self.longitude is None
            or self.rooms is None
            or self.toilets is None
            or self.suites is None
            or self.parking is None
            or self.condo_fee is None
            or self.elevator is None
            or self.furnished is None
            or self.swimming_pool is None
            or self.new is None
        )

    @property
    def not_given(self) -> tuple[str, ...]:
        """The optional fields (:data:`OPTIONAL`) this property leaves unknown."""
        # OPTIONAL in order, written out (see as_dict); most properties give every field.
        given = (
            self.rooms is not None,
            self.toilets is not None,
            self.suites is not None,
            self.parking is not None,
            bool(self.condo_fee),
            self.elevator is not None,
            self.furnished is not None,
            self.swimming_pool is not None,
            self.new is not None,
            self.latitude is not None and self.longitude is not None,
        )
        if all(given):
            return ()
        return tuple(name for name, known in zip(OPTIONAL, given, strict=True) if not known)

    def columns(self) -> dict[str, np.ndarray]:
        """This property as feature columns of length one."""
        return property_columns([self])


def _maybe(kind: Any, value: Any) -> Any:
    """``kind(value)``, or ``None`` for a value not given (``None`` or NaN, the one value not
    equal to itself: a comparison costs less than ``isinstance`` and ``math.isnan``, and every
    answer and prediction-log row makes eight of these)."""
    return None if value is None or value != value else kind(value)


def column_properties(cols: Mapping[str, np.ndarray]) -> list[Property]:
    """Feature columns (see :func:`frame_columns`) as properties, one per row: the inverse of
    :func:`property_columns` (an unknown field is ``None``)."""
    out = []
    for i in range(len(cols["size_m2"])):
        located = not (np.isnan(cols["latitude"][i]) or np.isnan(cols["longitude"][i]))
        out.append(
            Property(
                negotiation=str(cols["negotiation"][i]),
                district=str(cols["district"][i]),
                size_m2=float(cols["size_m2"][i]),
                **{name: _maybe(int, float(cols[name][i])) for name in COUNTS},
                condo_fee=_maybe(float, float(cols["condo_fee"][i])),
                **{name: _maybe(bool, float(cols[name][i])) for name in FLAGS},
                latitude=float(cols["latitude"][i]) if located else None,
                longitude=float(cols["longitude"][i]) if located else None,
            )
        )
    return out


def property_columns(props: Sequence[Property]) -> dict[str, np.ndarray]:
    """Properties as feature columns, one row each (an unknown condo fee or location is NaN):
    the inverse of :func:`column_properties`."""
    out: dict[str, np.ndarray] = {}
    for f in fields(Property):
        values = [getattr(p, f.name) for p in props]
        if f.name in ("negotiation", "district"):
            out[f.name] = np.array(values, dtype=object)
        else:
            out[f.name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    return out


def frame_columns(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """Validated listings (see :mod:`imovsp.data`) as feature columns."""
    return {
        name: frame[raw].to_numpy(dtype=object if name in ("negotiation", "district") else float)
        for name, raw in RAW_NAMES.items()
    }


def rotated(x: Any, y: Any) -> dict[str, Any]:
    """The :data:`ROTATED` coordinates of ``x``, ``y`` (km; arrays or plain floats, with the
    same arithmetic for both, so the single-row path matches the batch one to the bit)."""
    out = {}
    for name, (cos, sin) in zip(ROTATED[::2], _TURNS, strict=True):
        out[name] = x * cos + y * sin
        out["y" + name[1:]] = y * cos - x * sin
    return out


def project(lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """Degrees → (x, y) in km on a flat plane centred on the city."""
    return np.column_stack(((lon - ORIGIN[1]) * KM_PER_DEG_LON, (lat - ORIGIN[0]) * KM_PER_DEG_LAT))
