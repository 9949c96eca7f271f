"""Candidate features from the city's official geography, on repeated honest splits.

    uv run python benchmarks/geo_features.py [--splits 1 2 3 4]

For each split seed, as ``imovsp train`` does (``tuned_splits``): hold out 15% of the listings,
tune on the rest. Then fit the tuned member (one booster, its tuned trees and output scale) on
the train rows with the production features, and again with each candidate column appended:

- ``station_km``: distance to the nearest metro or train station of the 2025 network;
- ``station_2019_km``: the same without the stations opened after the listings were collected
  (April 2019: line 15's Jardim Planalto, Sapopemba, Fazenda da Juta and São Mateus, Dec 2019;
  line 4's Vila Sônia and line 9's Mendes, 2021; line 9's Varginha, later);
- ``official_district``: the official district the point lies in (categorical).

The point is the one the features use (``x_km``, ``y_km``: the listing's coordinates, or where
the pipeline places a listing without them). Prints mean MAPE / median APE % per candidate. The
production code is not changed: the columns are appended here.
"""

from __future__ import annotations

from collections.abc import Callable

import lightgbm as lgb
import numpy as np
from tuned_splits import Scores, arguments, errors, report, tuned_splits

from imovsp import ensemble
from imovsp.features import CATEGORICAL, FEATURES, KM_PER_DEG_LAT, KM_PER_DEG_LON, ORIGIN
from imovsp.geo import geography

OPENED_AFTER_APRIL_2019 = frozenset(
    {
        "Jardim Planalto",
        "Sapopemba",
        "Fazenda Da Juta",
        "São Mateus",
        "Vila Sônia",
        "Mendes / Bruno Covas",
        "Varginha",
    }
)


def points(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of the rows of a feature matrix."""
    x_km, y_km = x[:, FEATURES.index("x_km")], x[:, FEATURES.index("y_km")]
    return ORIGIN[0] + y_km / KM_PER_DEG_LAT, ORIGIN[1] + x_km / KM_PER_DEG_LON


def station(skip: frozenset[str]) -> Callable[[np.ndarray], np.ndarray]:
    def column(x: np.ndarray) -> np.ndarray:
        lat, lon = points(x)
        return geography().nearest_station_km(lat, lon, skip=skip)

    return column


def official_district(x: np.ndarray) -> np.ndarray:
    lat, lon = points(x)
    return np.array(geography().locate(lat, lon), dtype=float)


CANDIDATES: dict[str, tuple[Callable[[np.ndarray], np.ndarray], bool] | None] = {
    "production features": None,
    "+ station_km": (station(frozenset()), False),
    "+ station_2019_km": (station(OPENED_AFTER_APRIL_2019), False),
    "+ official_district": (official_district, True),
}


def main() -> None:
    args = arguments(__doc__ or "")
    scores: Scores = {}
    for tuned in tuned_splits(args.data, args.splits):
        params, rounds = ensemble.member_params(tuned.params, 0)
        for name, candidate in CANDIDATES.items():
            x, x_test = tuned.x, tuned.x_test
            names, categorical = list(FEATURES), list(CATEGORICAL)
            if candidate is not None:
                column, is_categorical = candidate
                x = np.column_stack([x, column(x)])
                x_test = np.column_stack([x_test, column(x_test)])
                names.append("candidate")
                if is_categorical:
                    categorical.append("candidate")
            dataset = lgb.Dataset(
                x,
                label=tuned.y,
                feature_name=names,
                categorical_feature=categorical,
                free_raw_data=False,
                params={"feature_pre_filter": False, "verbosity": -1},
            )
            booster = lgb.train(params, dataset, rounds)
            found = errors(tuned, booster.predict(x_test), rounds)
            scores.setdefault((tuned.negotiation, name), []).append(found)
    report(scores, {"features": "<22"})


if __name__ == "__main__":
    main()
