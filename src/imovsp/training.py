"""Fit, tune and evaluate the valuation model, and the seed approach beside it.

The protocol, for every ``imovsp train``:

1. the validated, de-duplicated listings are split into train and test (stratified by
   negotiation type, ``seed``); tuning never sees the test rows;
2. for each negotiation type, a small grid of LightGBM settings is cross-validated on the train
   rows (log price, early stopping picks the number of trees);
3. the price ranges are calibrated on the out-of-fold predictions of the train rows
   (see :mod:`imovsp.ranges`);
4. the chosen settings are fitted on train and scored on test (prices, and the ranges' coverage
   and width), and so is the seed approach (pandas one-hot of every column,
   ``RandomForestRegressor(random_state=42)``) on the same rows;
5. the model that is saved is refitted on all rows with the chosen settings; it keeps the range
   calibration of step 3 and the listings for comparables.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from imovsp import comparables, data, drift, ensemble, ranges
from imovsp.comparables import ComparableIndex
from imovsp.ensemble import Ensemble
from imovsp.features import CATEGORICAL, FEATURES, FeatureBuilder, frame_columns
from imovsp.metrics import by_negotiation

# scikit-learn (the splits, the seed approach's forest) is imported inside the functions that
# train: a server worker never loads it (see imovsp.api.server), ~60 MB less per worker.

BASE_PARAMS: dict[str, Any] = {
    "objective": "huber",
    "alpha": 0.15,  # in log price: residuals past ~15% count linearly, so outliers pull less
    # 0.1 rather than 0.05: on the 4 splits of benchmarks/accuracy.py sale is the same (13.27 /
    # 9.14 against 13.29 / 9.11, MAPE / median APE %) and rent a little worse (17.89 / 13.47
    # against 17.79 / 13.23, well inside its floors) with half the trees: 0.05 took train +
    # evaluate to 87 s, the artifact to 20 MB and a valuation to 0.45 ms (docs/benchmarks.md).
    "learning_rate": 0.1,
    "min_data_in_leaf": 5,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "feature_fraction": 0.8,
    "lambda_l2": 1.0,
    "cat_smooth": 10.0,
    "max_cat_to_onehot": 4,
    "verbosity": -1,
    "num_threads": 1,  # dev machine shared by four: OpenMP threads spin against each other
    "deterministic": True,
    "force_row_wise": True,
}
# With the turned axes cross-validation chose 31 leaves over 15 in every run (at learning rates
# 0.1 and 0.05, both negotiation types, the 4 accuracy splits and the full dev file); keeping one
# setting saves a third of the tuning time. Cross-validation still picks the number of trees.
GRID: dict[str, list[Any]] = {"num_leaves": [31]}
# Candidate multipliers of the model's median estimate. Prices scatter lognormally around it, so
# a slightly lower figure has a smaller expected relative error; the factor is chosen on
# out-of-fold predictions of the train rows only.
SCALES = np.round(np.arange(0.92, 1.0201, 0.005), 3)
MAX_ROUNDS = 3000
Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class TrainResult:
    """A fitted model and everything the artifact and the report say about it."""

    builder: FeatureBuilder
    boosters: dict[str, Ensemble]
    params: dict[str, dict[str, Any]]
    metrics: dict[str, Any]
    cv: dict[str, Any] = field(default_factory=dict)
    # Out-of-fold log-price predictions and actual prices of the train rows, per negotiation.
    oof: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    calibrations: dict[str, ranges.Calibration] = field(default_factory=dict)
    comparables: dict[str, ComparableIndex] = field(default_factory=dict)
    # The test rows with the eval model's price and 80% range (and the seed approach's price).
    test: pd.DataFrame | None = None
    # The training distribution that monitoring compares live inputs with (see :mod:`drift`).
    reference: drift.Reference | None = None


def split(frame: pd.DataFrame, *, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split  # not at the top: see the note there

    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[data.NEGOTIATION]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def _design(
    builder: FeatureBuilder, frame: pd.DataFrame, negotiation: str
) -> tuple[np.ndarray, np.ndarray]:
    """Features and log-price labels of the ``negotiation`` rows of ``frame``."""
    rows = frame[frame[data.NEGOTIATION] == negotiation]
    # Each training row is left out of its own neighbourhood features.
    self_ids = np.arange(len(rows))
    x = builder.matrix(frame_columns(rows), negotiation=negotiation, self_ids=self_ids)
    return x, np.log(rows[data.PRICE].to_numpy(float))


def _dataset(x: np.ndarray, y: np.ndarray) -> lgb.Dataset:
    return lgb.Dataset(
        x,
        label=y,
        feature_name=list(FEATURES),
        categorical_feature=list(CATEGORICAL),
        free_raw_data=False,
        # Tuning changes min_data_in_leaf; bins must not be pre-filtered for one value of it.
        params={"feature_pre_filter": False, "verbosity": -1},
    )


def tune(
    x: np.ndarray, y: np.ndarray, *, seed: int, folds: int
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cross-validate the grid on features ``x`` and log prices ``y``; return the best
    parameters and the CV log.

    The log includes the out-of-fold predictions of the best setting (``oof``, log price),
    which choose the output scale here and calibrate the price ranges.
    """
    from sklearn.model_selection import KFold  # not at the top: see the note there

    splits = list(KFold(folds, shuffle=True, random_state=seed).split(x))
    trials: list[dict[str, Any]] = []
    cv_boosters: list[Any] = []
    for values in itertools.product(*GRID.values()):
        grid_point = dict(zip(GRID, values, strict=True))
        result: dict[str, Any] = lgb.cv(
            {**BASE_PARAMS, **grid_point, "seed": seed},
            _dataset(x, y),
            num_boost_round=MAX_ROUNDS,
            folds=splits,
            metrics=["l1"],
            callbacks=[lgb.early_stopping(50, verbose=False)],
            return_cvbooster=True,
        )
        scores = result["valid l1-mean"]
        trials.append(
            {"params": grid_point, "rounds": len(scores), "cv_l1_log": round(float(scores[-1]), 5)}
        )
        cv_boosters.append(result["cvbooster"])
    best_i = min(range(len(trials)), key=lambda i: float(trials[i]["cv_l1_log"]))
    best = trials[best_i]
    params = {
        **BASE_PARAMS,
        **best["params"],
        "seed": seed,
        "num_rounds": best["rounds"],
        "log_size_mean": ensemble.log_size_mean(x),
    }
    # Out-of-fold predictions of the whole ensemble: the tuned member from its CV run, the
    # others fitted on the same folds.
    member_oof = np.empty((len(ensemble.MEMBERS), len(y)))
    for booster, (_, held) in zip(cv_boosters[best_i].boosters, splits, strict=True):
        member_oof[0, held] = booster.predict(x[held], num_iteration=best["rounds"])
    for i in range(1, len(ensemble.MEMBERS)):
        member, rounds = ensemble.member_params(params, i)
        off = ensemble.offset(i, x)
        for fit_rows, held in splits:
            booster = lgb.train(member, _dataset(x[fit_rows], y[fit_rows] - off[fit_rows]), rounds)
            member_oof[i, held] = booster.predict(x[held]) + off[held]
    oof = member_oof.mean(axis=0)
    params["scale"] = scale = best_scale(np.exp(y), np.exp(oof))
    log = {"folds": folds, "trials": trials, "best": best, "scale": scale, "oof": oof}
    return params, log


def best_scale(actual: np.ndarray, predicted: np.ndarray) -> float:
    """The multiplier in :data:`SCALES` with the lowest mean absolute percentage error."""
    errors = [np.mean(np.abs(s * predicted - actual) / actual) for s in SCALES]
    return float(SCALES[int(np.argmin(errors))])


def fit(
    frame: pd.DataFrame, params: dict[str, dict[str, Any]]
) -> tuple[FeatureBuilder, dict[str, Ensemble]]:
    """Fit the feature builder and one ensemble per negotiation type on ``frame``."""
    builder = FeatureBuilder().fit(frame)
    boosters = {n: fit_ensemble(*_design(builder, frame, n), p) for n, p in params.items()}
    return builder, boosters


def fit_ensemble(x: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> Ensemble:
    """The ensemble's members (:data:`imovsp.ensemble.MEMBERS`) fitted on features ``x`` and
    log prices ``y`` with the tuned ``params``."""
    members = []
    for i in range(len(ensemble.MEMBERS)):
        member, rounds = ensemble.member_params(params, i)
        members.append(lgb.train(member, _dataset(x, y - ensemble.offset(i, x)), rounds))
    return Ensemble(members, log_size_mean=params["log_size_mean"])


def estimate(
    builder: FeatureBuilder,
    boosters: dict[str, Ensemble],
    calibrations: dict[str, ranges.Calibration],
    frame: pd.DataFrame,
    params: dict[str, dict[str, Any]],
) -> dict[str, np.ndarray]:
    """Per row of ``frame``: ``price``, the unscaled ``log_median`` and the range's ``sigma``."""
    cols = frame_columns(frame)
    out = {k: np.full(len(frame), np.nan) for k in ("price", "log_median", "sigma")}
    for negotiation, booster in boosters.items():
        m = cols["negotiation"] == negotiation
        if m.any():
            x = builder.matrix({k: v[m] for k, v in cols.items()}, negotiation=negotiation)
            out["log_median"][m] = booster.predict(x)
            out["price"][m] = params[negotiation]["scale"] * np.exp(out["log_median"][m])
            out["sigma"][m] = calibrations[negotiation].sigma(x)
    return out


def with_ranges(
    frame: pd.DataFrame,
    est: dict[str, np.ndarray],
    calibrations: dict[str, ranges.Calibration],
    level: float = ranges.DEFAULT_LEVEL,
) -> pd.DataFrame:
    """``frame`` plus ``predicted``, ``price_low`` and ``price_high`` columns at ``level``."""
    out = frame.assign(predicted=est["price"], price_low=np.nan, price_high=np.nan)
    negotiation = frame[data.NEGOTIATION].to_numpy()
    for n, calibration in calibrations.items():
        m = (negotiation == n) & np.isfinite(est["price"])
        low, high = calibration.bounds(
            est["log_median"][m], est["sigma"][m], est["price"][m], level
        )
        out.loc[m, "price_low"], out.loc[m, "price_high"] = low, high
    return out


def range_metrics(
    frame: pd.DataFrame,
    est: dict[str, np.ndarray],
    calibrations: dict[str, ranges.Calibration],
) -> dict[str, dict[str, dict[str, float]]]:
    """Coverage and median width at :data:`imovsp.ranges.LEVELS` per negotiation type."""
    actual = frame[data.PRICE].to_numpy(float)
    negotiation = frame[data.NEGOTIATION].to_numpy()
    return {
        n: ranges.range_metrics(
            actual[m], est["log_median"][m], est["sigma"][m], est["price"][m], calibration
        )
        for n, calibration in calibrations.items()
        if (m := negotiation == n).any()
    }


def seed_design(frame: pd.DataFrame) -> pd.DataFrame:
    """The seed notebook's design matrix: one-hot of every column (raw coordinates, 0 if absent)."""
    x = frame.drop(columns=[data.PRICE]).fillna({data.LATITUDE: 0.0, data.LONGITUDE: 0.0})
    return pd.get_dummies(x, dtype=float)


def seed_predictions(train: pd.DataFrame, test: pd.DataFrame, *, n_jobs: int = 2) -> np.ndarray:
    from sklearn.ensemble import RandomForestRegressor  # not at the top: see the note there

    x_train = seed_design(train)
    x_test = seed_design(test).reindex(columns=x_train.columns, fill_value=0.0)
    model = RandomForestRegressor(random_state=42, n_jobs=n_jobs)
    model.fit(x_train, train[data.PRICE])
    return np.asarray(model.predict(x_test))


def train(
    frame: pd.DataFrame,
    *,
    seed: int = 42,
    test_size: float = 0.15,
    folds: int = 4,
    compare_seed: bool = True,
    progress: Progress = _quiet,
) -> TrainResult:
    """Tune and evaluate on a split of ``frame``, then refit on all of it (see module doc)."""
    started = time.perf_counter()
    train_rows, test_rows = split(frame, test_size=test_size, seed=seed)
    progress(f"split: {len(train_rows)} train rows, {len(test_rows)} test rows (seed {seed})")

    builder = FeatureBuilder().fit(train_rows)
    params, cv, oof, calibrations = {}, {}, {}, {}
    for negotiation in data.NEGOTIATIONS:
        if not (train_rows[data.NEGOTIATION] == negotiation).any():
            continue
        progress(f"tuning the {negotiation} model: {folds}-fold CV over {_grid_size()} settings")
        x, y = _design(builder, train_rows, negotiation)
        params[negotiation], cv[negotiation] = tune(x, y, seed=seed, folds=folds)
        rows = train_rows[train_rows[data.NEGOTIATION] == negotiation]
        oof[negotiation] = (cv[negotiation].pop("oof"), rows[data.PRICE].to_numpy(float))
        best = cv[negotiation]["best"]
        progress(
            f"  best {best['params']}, {best['rounds']} trees, scale {params[negotiation]['scale']}"
        )
        progress(f"calibrating the {negotiation} ranges on the out-of-fold predictions")
        calibrations[negotiation] = ranges.calibrate(x, y, oof[negotiation][0], seed=seed)
        cv[negotiation]["calibration"] = calibrations[negotiation].summary()

    progress("fitting on the train rows and scoring the test rows")
    eval_builder, eval_boosters = fit(train_rows, params)
    actual = test_rows[data.PRICE].to_numpy(float)
    negotiation_col = test_rows[data.NEGOTIATION].to_numpy()
    est = estimate(eval_builder, eval_boosters, calibrations, test_rows, params)
    results = {"imovsp": by_negotiation(actual, est["price"], negotiation_col)}
    test_table = with_ranges(test_rows, est, calibrations)
    if compare_seed:
        progress("fitting the seed approach (one-hot + RandomForest) on the same split")
        seed_predicted = seed_predictions(train_rows, test_rows)
        results["seed"] = by_negotiation(actual, seed_predicted, negotiation_col)
        test_table["seed_predicted"] = seed_predicted

    progress(f"refitting on all {len(frame)} rows")
    final_builder, final_boosters = fit(frame, params)
    listings = comparables.fit(frame, final_builder.codes_)
    reference = drift.reference(
        frame,
        districts=final_builder.districts_,
        district_price_m2=final_builder.district_price_m2_,
        predicted={n: params[n]["scale"] * np.exp(oof[n][0]) for n in oof},
    )
    metrics = {
        "split": {
            "test_size": test_size,
            "seed": seed,
            "train_rows": len(train_rows),
            "test_rows": len(test_rows),
        },
        "test": results,
        "ranges": range_metrics(test_rows, est, calibrations),
        "seconds": round(time.perf_counter() - started, 1),
    }
    return TrainResult(
        final_builder,
        final_boosters,
        params,
        metrics,
        cv,
        oof,
        calibrations,
        listings,
        test_table,
        reference=reference,
    )


def _grid_size() -> int:
    return int(np.prod([len(v) for v in GRID.values()]))
