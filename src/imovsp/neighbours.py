"""Nearest training listings: the local price features and the comparables' search.

One KD-tree per negotiation type over the listings' positions (km) and, for similar flats,
their size; single points are queried without numpy's per-call overhead (see
:meth:`imovsp.builder.FeatureBuilder.row`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np
from pykdtree.kdtree import KDTree
from threadpoolctl import ThreadpoolController

from imovsp.features import (
    NEIGHBOURS,
    SIMILAR,
    SIZE_WEIGHT_KM,
)


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
        dist, idx = query_points(self.tree_, xy, k_max)
        dist, idx = drop_self(dist, idx, self_ids)
        out = {}
        for k in NEIGHBOURS:
            out[f"nn{k}_log_price_m2"] = median_rows(self.log_price_m2[idx[:, :k]])
            out[f"nn{k}_distance_km"] = dist[:, min(k, dist.shape[1]) - 1]
        points = np.column_stack((xy, log_size * SIZE_WEIGHT_KM))
        sim_dist, sim = query_points(self.similar_tree_, points, min(SIMILAR + extra, len(self.xy)))
        sim_dist, sim = drop_self(sim_dist, sim, self_ids)
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


def median_one(values: list[float]) -> float:
    """:func:`median_rows` of one short row, in plain Python (the same arithmetic)."""
    ordered = sorted(values)
    half = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[half]
    return (ordered[half - 1] + ordered[half]) / 2


def query_one(tree: KDTree, point: list[float], k: int) -> tuple[list[float], list[int]]:
    """The ``k`` nearest of one point, as plain lists: their *squared* distances and indices.

    ``math.sqrt`` of a squared distance is what :func:`_query` gives (numpy's square root
    and the math module's are both exactly rounded), and taking it only for the distances a
    feature uses saves pykdtree's ``np.sqrt`` call (docs/benchmarks.md, *Training time,
    artifact, prediction speed*, session 9).
    """
    _one_openmp_thread()
    sq_dist, idx = tree.query(np.array([point], dtype=np.float64), k=k, sqr_dists=True)
    return sq_dist.ravel().tolist(), idx.ravel().tolist()


# pykdtree's own OpenMP runtime: each query runs in a team as large as the calling thread's
# OpenMP setting, whose idle threads then spin. Beside other busy processes they take the core
# from the caller, and a single-point query took hundreds of times longer.
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


def query_points(tree: KDTree, points: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    # pykdtree rather than scipy's cKDTree: the same exact search, several times faster per
    # single-point query, which is most of the online path's feature cost (docs/benchmarks.md).
    _one_openmp_thread()
    dist, idx = tree.query(np.ascontiguousarray(points, dtype=np.float64), k=k)
    return dist.reshape(len(points), -1), idx.reshape(len(points), -1).astype(np.intp)


def drop_self(
    dist: np.ndarray, idx: np.ndarray, self_ids: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    if self_ids is None:
        return dist, idx
    keep = idx != self_ids[:, None]
    # Rows where self was not among the neighbours (ties) drop their farthest one instead.
    keep[keep.all(axis=1), -1] = False
    n = idx.shape[1] - 1
    return dist[keep].reshape(-1, n), idx[keep].reshape(-1, n)
