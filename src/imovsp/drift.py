"""What the training data looked like, in a few numbers, and how far live inputs moved from it.

At training time :func:`reference` sums up the training listings of each negotiation type:

- each numeric field (size, rooms, toilets, suites, parking, condo fee when known) and the
  price: bin edges at the deciles of the training values, and the share of listings per bin;
- the predictions the model makes for such listings: its out-of-fold predictions of the train
  rows (made by fold models that never saw the row), binned at the price's edges;
- the district mix, in ten price tiers: districts ordered by their median price per m² and cut
  into groups holding a tenth of the listings each (plus one tier, empty in training, for
  districts without listings of that type). Ninety-six districts one by one would need thousands
  of live valuations before sampling noise fell well below any useful threshold; tiers keep the
  question that matters for the model (is the traffic richer or poorer than the training data?)
  answerable from a hundred;
- the share of listings whose location was not known (filled from the district's centre).

The artifact keeps these as ``reference_*`` arrays and a ``reference`` metadata entry, so
monitoring needs neither the training file nor the model at run time.

Distances are population stability indexes (:func:`psi`):
``sum((live - train) * ln(live / train))`` over the bins. By the usual reading, below 0.1 is
stable, 0.1 to 0.25 a moderate shift, above 0.25 a shift that changes what the model sees.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from imovsp import data
from imovsp.features import frame_columns

NUMERIC = ("size_m2", "rooms", "toilets", "suites", "parking", "condo_fee")
BINS = 10  # deciles
TIERS = 10
# Variables judged for each negotiation type, in report order.
VARIABLES = (*NUMERIC, "district_tier", "location_estimated", "predicted_price")
FLOOR = 1e-4  # a share of 0 in training (the empty tier) is taken as this
PREFIX = "reference"


@dataclass(frozen=True)
class Binned:
    """A variable's bins and the training share of each.

    Bin ``i`` holds the values ``edges[i-1] < x <= edges[i]`` (the first and last bins are open).
    """

    edges: np.ndarray
    shares: np.ndarray

    def counts(self, values: np.ndarray) -> np.ndarray:
        """How many of ``values`` fall in each bin."""
        where = np.searchsorted(self.edges, np.asarray(values, dtype=float), side="left")
        return np.bincount(where, minlength=len(self.edges) + 1)


def bin_edges(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """Interior edges at the quantiles of ``values``; repeated quantiles (counts, mostly) merge."""
    if len(values) == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))


def binned(values: np.ndarray, edges: np.ndarray | None = None) -> Binned:
    """``values``'s shares in bins at ``edges`` (by default, its own deciles)."""
    values = np.asarray(values, dtype=float)
    edges = bin_edges(values) if edges is None else edges
    counts = Binned(edges, np.empty(0)).counts(values)
    return Binned(edges, counts / max(len(values), 1))


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """Population stability index of live ``counts`` per bin against training shares.

    A bin with no live value counts as half a value (the usual continuity correction), so one
    empty bin in a small sample does not read as an infinite shift.
    """
    n = float(np.sum(counts))
    if n == 0:
        return float("nan")
    actual = np.maximum(np.asarray(counts, dtype=float), 0.5) / n
    expected = np.maximum(np.asarray(expected, dtype=float), FLOOR)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def district_tiers(shares: np.ndarray, price_m2: np.ndarray, tiers: int = TIERS) -> np.ndarray:
    """The tier of each district: districts ordered by price per m² and cut into ``tiers``
    groups of about equal training share; districts without a price go to tier ``tiers``."""
    out = np.full(len(shares), tiers, dtype=np.int64)
    priced = np.flatnonzero(np.isfinite(price_m2))
    order = priced[np.argsort(price_m2[priced], kind="stable")]
    total = shares[order].sum()
    if total > 0:
        middle = (np.cumsum(shares[order]) - shares[order] / 2) / total
        out[order] = np.minimum((middle * tiers).astype(np.int64), tiers - 1)
    return out


@dataclass
class Reference:
    """The training distribution of each negotiation type (see the module doc)."""

    districts: list[str]
    rows: dict[str, int]
    binned: dict[str, dict[str, Binned]]  # negotiation -> variable -> bins
    district_shares: dict[str, np.ndarray]  # negotiation -> training share of each district
    tiers: dict[str, np.ndarray]  # negotiation -> tier of each district
    price: dict[str, Binned] = field(default_factory=dict)  # training prices, predicted's edges

    def state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """JSON-able metadata and the arrays that hold the reference in an artifact."""
        meta = {
            "method": "deciles of the training listings per negotiation type; districts in "
            f"{TIERS} price tiers; predictions are out-of-fold predictions of the train rows",
            "rows": self.rows,
            "variables": list(VARIABLES),
        }
        arrays: dict[str, np.ndarray] = {}
        for n, per in self.binned.items():
            for name, b in {**per, "price": self.price[n]}.items():
                arrays[f"{PREFIX}_{n}_{name}_edges"] = b.edges
                arrays[f"{PREFIX}_{n}_{name}_shares"] = b.shares
            arrays[f"{PREFIX}_{n}_district_shares"] = self.district_shares[n]
            arrays[f"{PREFIX}_{n}_district_tiers"] = self.tiers[n]
        return meta, arrays

    @classmethod
    def from_state(
        cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], districts: Sequence[str]
    ) -> Reference:
        """The reference kept in an artifact (``KeyError`` or ``ValueError`` if incomplete)."""
        rows = {str(n): int(r) for n, r in meta["rows"].items()}
        binned_: dict[str, dict[str, Binned]] = {}
        price: dict[str, Binned] = {}
        for n in rows:

            def load(name: str, n: str = n) -> Binned:
                edges = np.asarray(arrays[f"{PREFIX}_{n}_{name}_edges"], dtype=float)
                shares = np.asarray(arrays[f"{PREFIX}_{n}_{name}_shares"], dtype=float)
                if shares.shape != (len(edges) + 1,):
                    raise ValueError(f"reference bins of {n} {name} do not match their edges")
                return Binned(edges, shares)

            binned_[n] = {name: load(name) for name in VARIABLES}
            price[n] = load("price")
        shares = {n: np.asarray(arrays[f"{PREFIX}_{n}_district_shares"], float) for n in rows}
        tiers = {n: np.asarray(arrays[f"{PREFIX}_{n}_district_tiers"], np.int64) for n in rows}
        if any(len(s) != len(districts) for s in (*shares.values(), *tiers.values())):
            raise ValueError("the reference's districts do not match the model's")
        return cls(list(districts), rows, binned_, shares, tiers, price)

    def tier_of(self, negotiation: str, districts: Sequence[str]) -> np.ndarray:
        """The tier of each named district (``TIERS``, the empty tier, for unknown names)."""
        code = {name: i for i, name in enumerate(self.districts)}
        table = self.tiers[negotiation]
        return np.array([table[code[d]] if d in code else TIERS for d in districts], np.int64)


def live_columns(cols: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The values each numeric variable is judged on (a condo fee only where it is known)."""
    out = {name: np.asarray(cols[name], dtype=float) for name in NUMERIC}
    fee = out["condo_fee"]
    out["condo_fee"] = fee[np.isfinite(fee) & (fee > 0)]
    return out


def reference(
    frame: pd.DataFrame,
    *,
    districts: Sequence[str],
    predicted: Mapping[str, np.ndarray],
) -> Reference:
    """The reference of validated training listings ``frame`` (see the module doc).

    ``predicted`` holds out-of-fold predicted prices per negotiation type. Districts are
    tiered by the median price per m² of all their listings, wherever they stand (a live
    valuation's district is judged by what its name meant in training).
    """
    cols = frame_columns(frame)
    code = {name: i for i, name in enumerate(districts)}
    price_m2 = frame[data.PRICE].to_numpy(float) / cols["size_m2"]
    rows, per, shares, tiers, price = {}, {}, {}, {}, {}
    for n in data.NEGOTIATIONS:
        m = cols["negotiation"] == n
        if not m.any() or n not in predicted:
            continue
        sub = {k: v[m] for k, v in cols.items()}
        rows[n] = int(m.sum())
        counts = np.bincount([code[d] for d in sub["district"]], minlength=len(districts))
        shares[n] = counts / counts.sum()
        medians = pd.Series(price_m2[m]).groupby(sub["district"]).median()
        tiers[n] = district_tiers(shares[n], medians.reindex(list(districts)).to_numpy(float))
        values = live_columns(sub)
        per[n] = {name: binned(values[name]) for name in NUMERIC}
        tier_counts = np.bincount(tiers[n], weights=counts, minlength=TIERS + 1)
        per[n]["district_tier"] = Binned(np.arange(TIERS) + 0.5, tier_counts / rows[n])
        estimated = float(np.mean(np.isnan(sub["latitude"]) | np.isnan(sub["longitude"])))
        per[n]["location_estimated"] = Binned(np.array([0.5]), np.array([1 - estimated, estimated]))
        price[n] = binned(frame.loc[m, data.PRICE].to_numpy(float))
        per[n]["predicted_price"] = binned(predicted[n], price[n].edges)
    return Reference(list(districts), rows, per, shares, tiers, price)
