"""The one place that turns listings, or one :class:`~imovsp.features.Property`, into the
model's input: :class:`FeatureBuilder` learns what the features need from training listings
(district places and levels, what is typical per size, the neighbour indexes) and builds the
matrix. Training, batch scoring and the API all call :meth:`FeatureBuilder.matrix` with plain
numpy columns, and a single property goes through :meth:`FeatureBuilder.row`, which gives the
same numbers to the bit.
"""

from __future__ import annotations

import bisect
import difflib
import math
from collections.abc import Mapping
from math import nan
from typing import Any

import numpy as np
import pandas as pd

from imovsp import data, geo
from imovsp.features import (
    CATEGORICAL,
    FEATURES,
    FLAGS,
    KM_PER_DEG_LAT,
    KM_PER_DEG_LON,
    NEIGHBOURS,
    NUMERIC,
    ORIGIN,
    OTHER,
    SIMILAR,
    SIZE_BINS,
    SIZE_WEIGHT_KM,
    TYPICAL,
    Property,
    UnknownDistrictError,
    frame_columns,
    project,
    rotated,
)
from imovsp.neighbours import (
    NeighbourIndex,
    median_one,
    median_rows,
    query_one,
    query_points,
)


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
        sq_dist, near = query_one(index.tree_, [x, y], min(max(NEIGHBOURS), n))
        point = [x, y, log_size * SIZE_WEIGHT_KM]
        sim_sq_dist, sim = query_one(index.similar_tree_, point, min(SIMILAR, n))
        other = self.other_[prop.negotiation]
        if other is None:
            other_median = np.nan
        else:
            _, around = query_one(other.tree_, [x, y], min(OTHER, len(other.price_list_)))
            other_median = median_one([other.price_list_[i] for i in around])
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
                    *(median_one([prices[i] for i in near[:k]]) for k in NEIGHBOURS),
                    *(math.sqrt(sq_dist[min(k, len(sq_dist)) - 1]) for k in NEIGHBOURS),
                    median_one([prices[i] for i in sim]),
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
        _, idx = query_points(other.tree_, xy, min(OTHER, len(other.xy)))
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
