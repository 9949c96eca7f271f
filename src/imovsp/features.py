"""The one place that turns listings, or one :class:`Property`, into the model's input.

Training, batch scoring and the API all call :meth:`FeatureBuilder.matrix` with plain numpy
columns; a single property is passed as columns of length one, so what is served is computed by
the very code that was trained on (and the single-row path never touches pandas).
"""

from __future__ import annotations

import bisect
import difflib
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from math import nan
from typing import Any

import numpy as np
import pandas as pd
from pykdtree.kdtree import KDTree
from threadpoolctl import ThreadpoolController

from imovsp import data, geo

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


def pattern_class(not_given: Sequence[str]) -> int:
    """The calibration class of a property whose ``not_given`` fields are unknown: one bit per
    group of :data:`GROUPS` that is given whole."""
    missing = set(not_given)
    return sum(
        1 << bit for bit, group in enumerate(GROUPS.values()) if not missing.intersection(group)
    )


def class_groups(klass: int) -> tuple[str, ...]:
    """The groups of :data:`GROUPS` that class ``klass`` gives."""
    return tuple(name for bit, name in enumerate(GROUPS) if klass >> bit & 1)


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
        if not (isinstance(self.size_m2, int | float) and 0 < self.size_m2 < float("inf")):
            raise ValueError(f"size_m2 must be a number > 0, not {self.size_m2!r}")
        for name in ("rooms", "toilets", "suites", "parking"):
            value = getattr(self, name)
            if value is None:
                continue
            if not (isinstance(value, int | float) and value >= 0 and float(value).is_integer()):
                raise ValueError(f"{name} must be a whole number ≥ 0, not {value!r}")
        if self.condo_fee is not None and not (
            isinstance(self.condo_fee, int | float) and 0 <= self.condo_fee < float("inf")
        ):
            raise ValueError(f"condo_fee must be a number ≥ 0, not {self.condo_fee!r}")

    def as_dict(self) -> dict[str, Any]:
        """Its fields as JSON values: counts as whole numbers, flags as booleans, a field not
        given (an unknown condo fee included) as ``None`` (what the API answers and the
        prediction log stores)."""
        return {
            "negotiation": self.negotiation,
            "district": self.district,
            "size_m2": self.size_m2,
            **{name: _maybe(int, getattr(self, name)) for name in COUNTS},
            "condo_fee": self.condo_fee or None,
            **{name: _maybe(bool, getattr(self, name)) for name in FLAGS},
            "latitude": self.latitude,
            "longitude": self.longitude,
        }

    @property
    def listed(self) -> bool:
        """Whether the ensemble of the listings as listed prices it (see
        :func:`listed_columns`): every field given, a condo fee of 0 included."""
        return (
            self.latitude is not None
            and self.longitude is not None
            and all(getattr(self, name) is not None for name in TYPICAL)
        )

    @property
    def not_given(self) -> tuple[str, ...]:
        """The optional fields (:data:`OPTIONAL`) this property leaves unknown."""
        located = self.latitude is not None and self.longitude is not None
        given = {name: getattr(self, name) is not None for name in TYPICAL}
        given.update(condo_fee=bool(self.condo_fee), location=located)
        return tuple(name for name in OPTIONAL if not given[name])

    def columns(self) -> dict[str, np.ndarray]:
        """This property as feature columns of length one."""
        return property_columns([self])


def _maybe(kind: Any, value: Any) -> Any:
    """``kind(value)``, or ``None`` for a value not given (``None`` or NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return kind(value)


def column_properties(cols: Mapping[str, np.ndarray]) -> list[Property]:
    """Feature columns (see :func:`frame_columns`) as properties, one per row: the inverse of
    :meth:`Property.columns` (an unknown field is ``None``)."""
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


@dataclass
class NeighbourIndex:
    """Training listings of one negotiation type, for local price features and comparables."""

    xy: np.ndarray  # (n, 2) km
    log_size: np.ndarray
    log_price_m2: np.ndarray

    def __post_init__(self) -> None:
        self.tree_ = KDTree(np.ascontiguousarray(self.xy, dtype=np.float64))
        # For the single-property path: indexing a list is cheaper than an array for a few items.
        self.price_list_: list[float] = self.log_price_m2.tolist()
        self.similar_tree_ = KDTree(
            np.column_stack((self.xy, self.log_size * SIZE_WEIGHT_KM)).astype(np.float64)
        )

    def features(
        self, xy: np.ndarray, log_size: np.ndarray, self_ids: np.ndarray | None
    ) -> dict[str, np.ndarray]:
        """Median log price per m² of the nearest listings; ``self_ids`` leaves each training
        row out of its own neighbourhood (otherwise a row would see its own price)."""
        extra = 0 if self_ids is None else 1
        k_max = min(max(NEIGHBOURS) + extra, len(self.xy))
        dist, idx = _query(self.tree_, xy, k_max)
        dist, idx = _drop_self(dist, idx, self_ids)
        out = {}
        for k in NEIGHBOURS:
            out[f"nn{k}_log_price_m2"] = median_rows(self.log_price_m2[idx[:, :k]])
            out[f"nn{k}_distance_km"] = dist[:, min(k, dist.shape[1]) - 1]
        points = np.column_stack((xy, log_size * SIZE_WEIGHT_KM))
        sim_dist, sim = _query(self.similar_tree_, points, min(SIMILAR + extra, len(self.xy)))
        sim_dist, sim = _drop_self(sim_dist, sim, self_ids)
        out[f"similar{SIMILAR}_log_price_m2"] = median_rows(self.log_price_m2[sim])
        out["similar1_log_price_m2"] = self.log_price_m2[sim[:, 0]]
        out["similar1_distance"] = sim_dist[:, 0]
        return out


def median_rows(values: np.ndarray) -> np.ndarray:
    """The median of each row: ``np.median(values, axis=1)`` to the bit, at a fraction of its
    cost on the small arrays of the single-property path (where np.median's overhead dominates).
    """
    k = values.shape[1]
    half = k // 2
    if k % 2:
        return np.partition(values, half, axis=1)[:, half]
    middle = np.partition(values, (half - 1, half), axis=1)
    return (middle[:, half - 1] + middle[:, half]) / 2


def _median_one(values: list[float]) -> float:
    """:func:`median_rows` of one short row, in plain Python (the same arithmetic)."""
    ordered = sorted(values)
    half = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[half]
    return (ordered[half - 1] + ordered[half]) / 2


def _query_one(tree: KDTree, point: list[float], k: int) -> tuple[list[float], list[int]]:
    """The ``k`` nearest of one point, as plain lists: their *squared* distances and indices.

    ``math.sqrt`` of a squared distance is what :func:`_query` gives (numpy's square root
    and the math module's are both exactly rounded), and taking it only for the distances a
    feature uses saves pykdtree's ``np.sqrt`` call: ~2.5 µs a query.
    """
    _one_openmp_thread()
    sq_dist, idx = tree.query(np.array([point], dtype=np.float64), k=k, sqr_dists=True)
    return sq_dist.ravel().tolist(), idx.ravel().tolist()


# pykdtree's own OpenMP runtime: each query runs in a team as large as the calling thread's
# OpenMP setting, whose idle threads then spin. Beside other busy processes they take the core
# from the caller: a single-point query was measured at 1.8 ms instead of 6 µs.
_PYKDTREE_OPENMP = [
    lib
    for lib in ThreadpoolController().select(user_api="openmp").lib_controllers
    if "pykdtree" in lib.filepath
]
_one_thread = threading.local()


def _one_openmp_thread() -> None:
    """One OpenMP thread per query, set once in each calling thread (the setting is per thread)."""
    if not getattr(_one_thread, "set", False):
        for lib in _PYKDTREE_OPENMP:
            lib.set_num_threads(1)
        _one_thread.set = True


def _query(tree: KDTree, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    # pykdtree rather than scipy's cKDTree: the same exact search, and ~5 µs instead of ~40 µs
    # per single-point query, which is most of the online path's feature cost.
    _one_openmp_thread()
    dist, idx = tree.query(np.ascontiguousarray(points, dtype=np.float64), k=k)
    return dist.reshape(len(points), -1), idx.reshape(len(points), -1).astype(np.intp)


def _drop_self(
    dist: np.ndarray, idx: np.ndarray, self_ids: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if self_ids is None:
        return dist, idx
    keep = idx != self_ids[:, None]
    # Rows where self was not among the neighbours (ties) drop their farthest one instead.
    keep[keep.all(axis=1), -1] = False
    n = idx.shape[1] - 1
    return dist[keep].reshape(-1, n), idx[keep].reshape(-1, n)


class FeatureBuilder:
    """Learns what the features need from training listings (``fit``), then builds matrices."""

    districts_: list[str]
    codes_: dict[str, int]
    folded_: dict[str, str]
    # Where a valuation without coordinates is placed: a point in its district.
    centroids_: np.ndarray
    # Where a training listing without coordinates is placed (its masked copies too): the
    # median position of its district name's listings. For a few names the portal gave listings
    # elsewhere (Iguatemi's all lie in Itaim Bibi), so training them at the district's own point
    # would teach the model those prices there. Only :meth:`fit` sets it (not saved).
    listing_centres_: np.ndarray
    typical_: np.ndarray
    district_price_m2_: np.ndarray
    neighbours_: dict[str, NeighbourIndex]
    other_: dict[str, NeighbourIndex | None]

    def fit(self, frame: pd.DataFrame) -> FeatureBuilder:
        """Learn district levels, district centres and the neighbour indexes."""
        self.districts_ = sorted(frame[data.DISTRICT].unique())
        self.listing_centres_, self.centroids_, own = self._places(frame)
        self._index_districts()
        cols = frame_columns(frame)
        self.typical_ = self._typical_table(cols)
        lat, lon = self._locate(cols, listings=True)[:2]
        xy = project(lat, lon)
        log_price_m2 = np.log(frame[data.PRICE].to_numpy(float) / cols["size_m2"])
        self.neighbours_ = {}
        for negotiation in data.NEGOTIATIONS:
            m = cols["negotiation"] == negotiation
            if m.any():
                self.neighbours_[negotiation] = NeighbourIndex(
                    xy[m], np.log(cols["size_m2"][m]), log_price_m2[m]
                )
        self._index_neighbours()
        # Median price per m² of each district, per negotiation type, over the listings that
        # stand in it (NaN: none).
        codes = self._locate(cols, listings=True)[3]
        self.district_price_m2_ = np.full((len(self.districts_), len(data.NEGOTIATIONS)), np.nan)
        for j, negotiation in enumerate(data.NEGOTIATIONS):
            m = (cols["negotiation"] == negotiation) & own
            per_m2 = pd.Series(np.exp(log_price_m2[m])).groupby(codes[m]).median()
            self.district_price_m2_[per_m2.index.to_numpy(), j] = per_m2.to_numpy()
        return self

    def _places(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per district, the median position of its listings (of the city's where it has none
        located) and where a valuation without coordinates is placed; per listing, whether it
        stands for its district (:meth:`geo.Geography.own_listings`; all of a name the city's
        map lacks). The valuation's point: :meth:`geo.Geography.centre`."""
        located = frame.dropna(subset=[data.LATITUDE, data.LONGITUDE])
        medians = located.groupby(data.DISTRICT)[[data.LATITUDE, data.LONGITUDE]].median()
        city = located[[data.LATITUDE, data.LONGITUDE]].median()
        medians = medians.reindex(self.districts_).fillna(city)
        geography = geo.geography()
        centres = medians.to_numpy(dtype=float)
        own = np.ones(len(frame), dtype=bool)
        names = frame[data.DISTRICT].to_numpy()
        lats = frame[data.LATITUDE].to_numpy(float)
        lons = frame[data.LONGITUDE].to_numpy(float)
        for i, name in enumerate(self.districts_):
            rows = names == name
            found = geography.own_listings(name, lats[rows], lons[rows])
            if found is None:
                continue
            own[rows] = found
            centres[i] = geography.centre(name, lats[rows], lons[rows])
        return medians.to_numpy(dtype=float), centres, own

    def district_price_m2(self, district: str, negotiation: str) -> float | None:
        """Median listed price per m² in a known district (``None`` where it has none)."""
        value = self.district_price_m2_[self.codes_[district], data.NEGOTIATIONS.index(negotiation)]
        return None if np.isnan(value) else float(value)

    @staticmethod
    def _typical_table(cols: Mapping[str, np.ndarray]) -> np.ndarray:
        """Per size band: median counts, median condo fee per m², and the usual flags."""
        band = np.digitize(cols["size_m2"], SIZE_BINS[1:-1])
        condo_m2 = np.where(cols["condo_fee"] > 0, cols["condo_fee"] / cols["size_m2"], np.nan)
        table = np.full((len(SIZE_BINS) - 1, len(TYPICAL)), np.nan)
        for b in range(len(SIZE_BINS) - 1):
            m = band == b
            if not m.any():
                continue
            for j, name in enumerate(TYPICAL):
                if name == "condo_fee":
                    table[b, j] = np.nanmedian(condo_m2[m]) if np.isfinite(condo_m2[m]).any() else 0
                elif name in FLAGS:
                    table[b, j] = float(np.mean(cols[name][m]) >= 0.5)
                else:
                    table[b, j] = np.median(cols[name][m])
        # Bands with no listings borrow from the nearest band that has some.
        for j in range(table.shape[1]):
            col = pd.Series(table[:, j]).ffill().bfill()
            table[:, j] = col.to_numpy()
        return table

    def typical(self, size_m2: float) -> dict[str, float | bool]:
        """What is usual for a flat of ``size_m2``: counts, a condo fee, the common flags."""
        # bisect_right is np.digitize for one value, without numpy's call overhead.
        row = self.typical_[bisect.bisect_right(SIZE_BINS[1:-1], size_m2)].tolist()
        out: dict[str, float | bool] = {}
        for name, value in zip(TYPICAL, row, strict=True):
            if name == "condo_fee":
                out[name] = round(float(value) * size_m2, -1)
            elif name in FLAGS:
                out[name] = bool(value)
            else:
                out[name] = round(float(value))
        return out

    def typical_bands(self) -> list[tuple[float, float | None, dict[str, float | bool]]]:
        """Per size band: (from m², to m² or ``None``, :data:`TYPICAL` medians with the condo
        fee per m² and the flags as booleans)."""
        out = []
        for b, row in enumerate(self.typical_.tolist()):
            values = {
                name: bool(value) if name in FLAGS else float(value)
                for name, value in zip(TYPICAL, row, strict=True)
            }
            upper = SIZE_BINS[b + 1]
            out.append((SIZE_BINS[b], None if math.isinf(upper) else upper, values))
        return out

    def _index_districts(self) -> None:
        self.codes_ = {name: i for i, name in enumerate(self.districts_)}
        self.folded_ = {data.fold(name): name for name in self.districts_}

    def resolve_district(self, name: str) -> str:
        """The known district ``name`` refers to (any case or accents, ``/São Paulo`` allowed)."""
        key = data.fold(name)
        if key in self.folded_:
            return self.folded_[key]
        close = difflib.get_close_matches(key, list(self.folded_), n=3, cutoff=0.6)
        raise UnknownDistrictError(name, [self.folded_[c] for c in close])

    def _locate(
        self, cols: Mapping[str, np.ndarray], *, listings: bool = False
    ) -> tuple[np.ndarray, ...]:
        codes = np.array([self.codes_[d] for d in cols["district"]], dtype=np.int64)
        lat, lon = cols["latitude"], cols["longitude"]
        estimated = np.isnan(lat) | np.isnan(lon)
        centres = self.listing_centres_ if listings else self.centroids_
        lat = np.where(estimated, centres[codes, 0], lat)
        lon = np.where(estimated, centres[codes, 1], lon)
        return lat, lon, estimated, codes

    def matrix(
        self,
        cols: Mapping[str, np.ndarray],
        *,
        negotiation: str,
        self_ids: np.ndarray | None = None,
        listings: bool = False,
    ) -> np.ndarray:
        """Feature matrix, columns in :data:`FEATURES` order, for rows of one negotiation type.

        District names must already be known ones (see :meth:`resolve_district`). Rows without
        coordinates are placed in their district, or with ``listings`` (training rows, on the
        fitted builder only) where their district's listings are (:attr:`listing_centres_`).
        """
        lat, lon, estimated, codes = self._locate(cols, listings=listings)
        size = cols["size_m2"]
        condo = np.where(cols["condo_fee"] > 0, cols["condo_fee"], np.nan)
        xy = project(lat, lon)
        local = self.neighbours_[negotiation].features(xy, np.log(size), self_ids)
        local[f"other_nn{OTHER}_log_price_m2"] = self._other_market(negotiation, xy)
        columns = {
            **{name: cols[name] for name in NUMERIC if name != "condo_fee"},
            "condo_fee": condo,
            **{name: cols[name] for name in FLAGS},
            "x_km": xy[:, 0],
            "y_km": xy[:, 1],
            **rotated(xy[:, 0], xy[:, 1]),
            "location_estimated": estimated.astype(np.float64),
            "condo_per_m2": condo / size,
            "district": codes.astype(np.float64),
            **local,
        }
        out = np.empty((len(size), len(FEATURES)), dtype=np.float64)
        for j, name in enumerate(FEATURES):
            out[:, j] = columns[name]
        return out

    def row(self, prop: Property) -> np.ndarray:
        """The feature row of one property whose district is a known one: what
        ``matrix(prop.columns(), ...)`` gives, to the bit (tested), at a fraction of the cost.

        The online path values one property per request; numpy's per-call overhead on arrays
        of length one was most of its time. Every number goes through the same operations as
        in :meth:`matrix`, in the same order.
        """
        code = self.codes_[prop.district]
        estimated = prop.latitude is None or prop.longitude is None
        if estimated:
            lat, lon = self.centroids_[code].tolist()
        else:
            lat, lon = float(prop.latitude), float(prop.longitude)  # type: ignore[arg-type]
        x = (lon - ORIGIN[1]) * KM_PER_DEG_LON
        y = (lat - ORIGIN[0]) * KM_PER_DEG_LAT
        size = float(prop.size_m2)
        log_size = float(np.log(size))
        condo = float(prop.condo_fee) if prop.condo_fee and prop.condo_fee > 0 else nan
        index = self.neighbours_[prop.negotiation]
        prices = index.price_list_
        n = len(prices)
        sq_dist, near = _query_one(index.tree_, [x, y], min(max(NEIGHBOURS), n))
        point = [x, y, log_size * SIZE_WEIGHT_KM]
        sim_sq_dist, sim = _query_one(index.similar_tree_, point, min(SIMILAR, n))
        other = self.other_[prop.negotiation]
        if other is None:
            other_median = np.nan
        else:
            _, around = _query_one(other.tree_, [x, y], min(OTHER, len(other.price_list_)))
            other_median = _median_one([other.price_list_[i] for i in around])
        # In FEATURES order (the test against matrix() checks every column).
        return np.array(
            [
                [
                    size,
                    nan if prop.rooms is None else prop.rooms,
                    nan if prop.toilets is None else prop.toilets,
                    nan if prop.suites is None else prop.suites,
                    nan if prop.parking is None else prop.parking,
                    condo,
                    nan if prop.elevator is None else prop.elevator,
                    nan if prop.furnished is None else prop.furnished,
                    nan if prop.swimming_pool is None else prop.swimming_pool,
                    nan if prop.new is None else prop.new,
                    x,
                    y,
                    *rotated(x, y).values(),
                    estimated,
                    condo / size,
                    code,
                    *(_median_one([prices[i] for i in near[:k]]) for k in NEIGHBOURS),
                    *(math.sqrt(sq_dist[min(k, len(sq_dist)) - 1]) for k in NEIGHBOURS),
                    _median_one([prices[i] for i in sim]),
                    prices[sim[0]],
                    math.sqrt(sim_sq_dist[0]),
                    other_median,
                ]
            ],
            dtype=np.float64,
        )

    def _index_neighbours(self) -> None:
        # For each negotiation type, the listings of the other one (None if the model has only
        # one type): looked up once per valuation.
        self.other_ = {
            negotiation: next((i for n, i in self.neighbours_.items() if n != negotiation), None)
            for negotiation in self.neighbours_
        }

    def _other_market(self, negotiation: str, xy: np.ndarray) -> np.ndarray:
        other = self.other_[negotiation]
        if other is None:
            return np.full(len(xy), np.nan)
        _, idx = _query(other.tree_, xy, min(OTHER, len(other.xy)))
        return median_rows(other.log_price_m2[idx])

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """What the artifact keeps: JSON-able metadata and numeric arrays (no pickle)."""
        meta: dict[str, Any] = {
            "features": list(FEATURES),
            "categorical": list(CATEGORICAL),
            "districts": self.districts_,
            "typical": {"size_bins": list(SIZE_BINS[:-1]), "fields": list(TYPICAL)},
        }
        arrays = {
            "district_centroids": self.centroids_,
            "district_price_m2": self.district_price_m2_,
            "typical": self.typical_,
        }
        for negotiation, index in self.neighbours_.items():
            arrays[f"{negotiation}_xy"] = index.xy
            arrays[f"{negotiation}_log_size"] = index.log_size
            arrays[f"{negotiation}_log_price_m2"] = index.log_price_m2
        return meta, arrays

    @classmethod
    def from_state(
        cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]
    ) -> FeatureBuilder:
        if list(meta["features"]) != list(FEATURES):
            saved = list(meta["features"])
            lacks = [f for f in FEATURES if f not in saved]
            extra = [f for f in saved if f not in FEATURES]
            change = "; ".join(
                part
                for part in (
                    f"it lacks {', '.join(lacks)}" if lacks else "",
                    f"it has {', '.join(extra)}, no longer used" if extra else "",
                )
                if part
            )
            raise ValueError(
                "it was trained by another version of imovsp, with other features "
                f"({change or 'in another order'}): train a new model with `imovsp train`"
            )
        self = cls()
        self.districts_ = list(meta["districts"])
        self.centroids_ = np.asarray(arrays["district_centroids"], dtype=float)
        if self.centroids_.shape != (len(self.districts_), 2):
            raise ValueError("district centroids do not match the district list")
        self._index_districts()
        self.district_price_m2_ = np.asarray(arrays["district_price_m2"], dtype=float)
        if self.district_price_m2_.shape != (len(self.districts_), len(data.NEGOTIATIONS)):
            raise ValueError("district prices per m² do not match the district list")
        self.typical_ = np.asarray(arrays["typical"], dtype=float)
        if self.typical_.shape != (len(SIZE_BINS) - 1, len(TYPICAL)):
            raise ValueError("the typical-values table does not match this imovsp's fields")
        self.neighbours_ = {
            n: NeighbourIndex(
                arrays[f"{n}_xy"], arrays[f"{n}_log_size"], arrays[f"{n}_log_price_m2"]
            )
            for n in data.NEGOTIATIONS
            if f"{n}_xy" in arrays
        }
        self._index_neighbours()
        return self
