"""Comparable listings: the training listings most like a property, the way an appraiser picks them.

Similarity is a distance in km-equivalents: the distance on the map, plus a weighted difference
in size, rooms and features (one unit of each attribute counts as :data:`WEIGHTS` km). The
listings are stored as one float array per negotiation type; the k-d tree over them is built at
load. Listings whose location was unknown (filled from their district) are left out: their
distance would mean nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from imovsp import data
from imovsp.features import FLAGS, frame_columns, project

COLUMNS = (
    "latitude",
    "longitude",
    "price",
    "size_m2",
    "rooms",
    "toilets",
    "suites",
    "parking",
    "condo_fee",
    *FLAGS,
    "district",  # code in the feature builder's district list
)
# How many km one unit of difference counts as: a flat 10% larger is as different as one
# 0.3 km away; one room more as one 0.8 km away.
WEIGHTS = {
    "log_size": 3.0,
    "rooms": 0.8,
    "suites": 0.5,
    "toilets": 0.3,
    "parking": 0.5,
    "elevator": 0.3,
    "furnished": 0.5,
    "swimming_pool": 0.3,
    "new": 0.5,
}


@dataclass(frozen=True, slots=True)
class Match:
    """One comparable: its row in the index and how far it is on the map."""

    row: int
    distance_km: float


class ComparableIndex:
    """Training listings of one negotiation type, searchable by similarity."""

    def __init__(self, table: np.ndarray) -> None:
        if table.ndim != 2 or table.shape[1] != len(COLUMNS):
            raise ValueError(
                f"comparables table has shape {table.shape}; expected (n, {len(COLUMNS)})"
            )
        self.table = np.asarray(table, dtype=np.float64)
        self.col = {name: i for i, name in enumerate(COLUMNS)}
        self.xy_ = project(self.column("latitude"), self.column("longitude"))
        self.tree_ = cKDTree(self.points(self.xy_, self.table)) if len(self.table) else None

    def column(self, name: str) -> np.ndarray:
        return self.table[:, self.col[name]]

    def points(self, xy: np.ndarray, attrs: np.ndarray) -> np.ndarray:
        """Rows of ``attrs`` (columns as :data:`COLUMNS`) as points of the similarity space."""
        parts = [xy, WEIGHTS["log_size"] * np.log(attrs[:, [self.col["size_m2"]]])]
        parts += [w * attrs[:, [self.col[name]]] for name, w in WEIGHTS.items() if name in self.col]
        return np.hstack(parts)

    def describe(self, row: int, districts: Sequence[str]) -> dict[str, Any]:
        """One listing's facts, typed and named as :class:`imovsp.valuer.Comparable` has them."""
        values = dict(zip(COLUMNS, self.table[row].tolist(), strict=True))
        out: dict[str, Any] = {
            **values,
            "price_m2": values["price"] / values["size_m2"],
            "district": districts[int(values["district"])],
            "condo_fee": values["condo_fee"] if values["condo_fee"] > 0 else None,
        }
        for name in ("rooms", "toilets", "suites", "parking"):
            out[name] = int(values[name])
        for name in FLAGS:
            out[name] = bool(values[name])
        return out

    def query(self, xy: np.ndarray, attrs: np.ndarray, k: int) -> list[Match]:
        """The ``k`` listings most similar to one property at ``xy`` (km) with ``attrs``."""
        if self.tree_ is None or k <= 0:
            return []
        k = min(k, len(self.table))
        _, idx = self.tree_.query(self.points(xy.reshape(1, 2), attrs.reshape(1, -1))[0], k=k)
        rows = np.atleast_1d(idx)
        km = np.hypot(*(self.xy_[rows] - xy.reshape(1, 2)).T)
        return [Match(int(r), float(d)) for r, d in zip(rows, km, strict=True)]


def table(cols: Mapping[str, np.ndarray], price: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Listing columns (see :func:`imovsp.features.frame_columns`) as a :data:`COLUMNS` table."""
    values = {**cols, "price": price, "district": codes}
    return np.column_stack([np.asarray(values[name], dtype=np.float64) for name in COLUMNS])


def fit(frame: pd.DataFrame, codes: Mapping[str, int]) -> dict[str, ComparableIndex]:
    """One index per negotiation type from validated training listings with known locations."""
    located = frame.dropna(subset=[data.LATITUDE, data.LONGITUDE])
    cols = frame_columns(located)
    district = np.array([codes[d] for d in cols["district"]], dtype=np.float64)
    full = table(cols, located[data.PRICE].to_numpy(float), district)
    return {
        n: ComparableIndex(full[cols["negotiation"] == n])
        for n in data.NEGOTIATIONS
        if (cols["negotiation"] == n).any()
    }


def state(indexes: Mapping[str, ComparableIndex]) -> dict[str, np.ndarray]:
    return {f"{n}_comparables": index.table for n, index in indexes.items()}


def from_state(arrays: Mapping[str, np.ndarray]) -> dict[str, ComparableIndex]:
    return {
        n: ComparableIndex(arrays[f"{n}_comparables"])
        for n in data.NEGOTIATIONS
        if f"{n}_comparables" in arrays
    }
