"""Fit and tune the valuation model; score it and the seed approach beside it (with
:mod:`imovsp.evaluation`).

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

import hashlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from imovsp import comparables, data, drift, ensemble, ranges
from imovsp.bounds import DEFAULT_LEVEL, MAX_LEVEL, MIN_LEVEL
from imovsp.builder import FeatureBuilder
from imovsp.comparables import ComparableIndex
from imovsp.data import DataReport
from imovsp.ensemble import MASKED, MEMBERS, Ensemble, Routed
from imovsp.evaluation import pattern_metrics, range_metrics, seed_predictions, with_ranges
from imovsp.features import (
    CATEGORICAL,
    FEATURES,
    FIELD_SETS,
    GROUPS,
    OPTIONAL,
    calibration_classes,
    frame_columns,
    listed_columns,
    mask,
    raw_columns,
)
from imovsp.metrics import by_negotiation
from imovsp.predict import estimate
from imovsp.price_index import DEFAULT_DATA_MONTH
from imovsp.valuer import Valuer

# scikit-learn (the splits) is imported inside the function that splits: a server worker never
# loads it (see imovsp.server.main), ~60 MB less per worker.

BASE_PARAMS: dict[str, Any] = {
    "objective": "huber",
    "alpha": 0.15,  # in log price: residuals past ~15% count linearly, so outliers pull less
    # 0.1 rather than 0.05: on the 4 splits of benchmarks/accuracy.py sale is the same (13.27 /
    # 9.14 against 13.29 / 9.11, MAPE / median APE %) and rent a little worse (17.89 / 13.47
    # against 17.79 / 13.23, well inside its floors) with half the trees, and so half the
    # training time, artifact and valuation time (docs/benchmarks.md, *Accuracy on repeated
    # honest splits*).
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
# The masked ensemble learns twice as fast: on the 4 splits of benchmarks/accuracy.py every
# field set scored within 0.11 points of MAPE of 0.1 (docs/benchmarks.md), with about half the
# trees, so a partial valuation costs what a complete one does and the artifact stays < 10 MB.
MASKED_LEARNING_RATE = 0.2

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class TrainResult:
    """A fitted model and everything the artifact and the report say about it."""

    builder: FeatureBuilder
    boosters: dict[str, Routed]
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
    # The final model's training listings, hashed (see data.fingerprints), sorted.
    fingerprints: np.ndarray | None = None


def split(frame: pd.DataFrame, *, test_size: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    from sklearn.model_selection import train_test_split  # not at the top: see the note there

    train, test = train_test_split(
        frame, test_size=test_size, random_state=seed, stratify=frame[data.NEGOTIATION]
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


@dataclass
class Design:
    """The training matrix of one negotiation type: each listing as listed and as people
    describe a flat (see :func:`masked_copies`)."""

    x: np.ndarray
    y: np.ndarray  # log price
    listing: np.ndarray  # the listing each row is a copy of (folds keep copies together)
    klass: np.ndarray  # the range calibration class of each row (features.calibration_classes)
    listed: np.ndarray  # the rows the listed ensemble prices (see features.listed_columns)

    @property
    def listing_rows(self) -> slice:
        """The rows of the listings as listed: the first copy."""
        return slice(0, int(self.listing.max(initial=-1)) + 1)


def masked_copies(cols: dict[str, np.ndarray], *, seed: int) -> list[dict[str, np.ndarray]]:
    """The columns of listings as listed, masked to each partial field set of
    :data:`imovsp.features.FIELD_SETS`, and once more with each group of fields left out at
    random (half the time each), so that the model and the ranges see every mix of fields."""
    copies = [cols]
    copies += [
        mask(cols, [f for f in OPTIONAL if f not in given])
        for name, given in FIELD_SETS.items()
        if name != "complete"
    ]
    rng = np.random.default_rng(seed)
    n = len(cols["size_m2"])
    drawn = dict(cols)
    for group in GROUPS.values():
        drop = rng.random(n) < 0.5
        for name in group:
            for column in raw_columns(name):
                drawn[column] = np.where(drop, np.nan, cols[column])
    copies.append(drawn)
    return copies


def _design(
    builder: FeatureBuilder, frame: pd.DataFrame, negotiation: str, *, seed: int = 0
) -> Design:
    """Features and log-price labels of the ``negotiation`` rows of ``frame``, each listing
    once as listed and once per masked copy (see :func:`masked_copies`)."""
    rows = frame[frame[data.NEGOTIATION] == negotiation]
    cols = frame_columns(rows)
    # Each training row is left out of its own neighbourhood features, in every copy.
    self_ids = np.arange(len(rows))
    copies = masked_copies(cols, seed=seed)
    x = np.concatenate(
        [
            builder.matrix(c, negotiation=negotiation, self_ids=self_ids, listings=True)
            for c in copies
        ]
    )
    listed = np.concatenate([listed_columns(c) for c in copies])
    klass = np.concatenate([calibration_classes(c) for c in copies])
    y = np.log(rows[data.PRICE].to_numpy(float))
    return Design(x, np.tile(y, len(copies)), np.tile(self_ids, len(copies)), klass, listed)


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
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    folds: int,
    listing: np.ndarray | None = None,
    learning_rate: float | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Cross-validate the grid on features ``x`` and log prices ``y`` (rows that are copies
    of one ``listing`` kept in one fold); return the best parameters and the CV log.

    The log includes the out-of-fold predictions of the best setting (``oof``, log price),
    which choose the output scale here and calibrate the price ranges.
    """
    listing = np.arange(len(y)) if listing is None else listing
    splits = ranges.listing_folds(listing, folds=folds, seed=seed)
    base = BASE_PARAMS if learning_rate is None else {**BASE_PARAMS, "learning_rate": learning_rate}
    trials: list[dict[str, Any]] = []
    cv_boosters: list[Any] = []
    for values in itertools.product(*GRID.values()):
        grid_point = dict(zip(GRID, values, strict=True))
        result: dict[str, Any] = lgb.cv(
            {**base, **grid_point, "seed": seed},
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
        **base,
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
) -> tuple[FeatureBuilder, dict[str, Routed]]:
    """Fit the feature builder and one routed model per negotiation type on ``frame``: the
    listed ensemble on the listings, the masked one on them and their masked copies."""
    builder = FeatureBuilder().fit(frame)
    boosters = {}
    for n, p in params.items():
        design = _design(builder, frame, n, seed=int(p["seed"]))
        listed = design.listing_rows
        boosters[n] = Routed(
            fit_ensemble(design.x[listed], design.y[listed], p),
            fit_ensemble(design.x, design.y, p[MASKED]),
        )
    return builder, boosters


def fit_ensemble(x: np.ndarray, y: np.ndarray, params: dict[str, Any]) -> Ensemble:
    """The ensemble's members (:data:`imovsp.ensemble.MEMBERS`) fitted on features ``x`` and
    log prices ``y`` with the tuned ``params``."""
    members = []
    for i in range(len(ensemble.MEMBERS)):
        member, rounds = ensemble.member_params(params, i)
        members.append(lgb.train(member, _dataset(x, y - ensemble.offset(i, x)), rounds))
    return Ensemble(members, log_size_mean=params["log_size_mean"])


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
        design = _design(builder, train_rows, negotiation, seed=seed)
        x, y, listed = design.x, design.y, design.listing_rows
        params[negotiation], cv[negotiation] = tune(x[listed], y[listed], seed=seed, folds=folds)
        best = cv[negotiation]["best"]
        progress(f"  listed: {best['params']}, {best['rounds']} trees")
        progress(f"tuning the {negotiation} model of partial descriptions on {len(y)} copies")
        masked, masked_cv = tune(
            x, y, seed=seed, folds=folds, listing=design.listing, learning_rate=MASKED_LEARNING_RATE
        )
        progress(f"  masked: {masked_cv['best']['rounds']} trees")
        # Each row's out-of-fold estimate by the ensemble that would price it (see Routed);
        # a row the listed ensemble prices is, in any copy, its listing as listed.
        oof_all = masked_cv.pop("oof")
        listed_oof = cv[negotiation].pop("oof")
        full = design.listed
        oof_all[full] = listed_oof[design.listing[full]]
        scale = best_scale(np.exp(y), np.exp(oof_all))
        params[negotiation] |= {"scale": scale, MASKED: {**masked, "scale": scale}}
        cv[negotiation][MASKED] = masked_cv
        # The listings as listed: what monitoring's reference compares live valuations with.
        oof[negotiation] = (oof_all[listed], np.exp(y[listed]))
        progress(
            f"calibrating the {negotiation} ranges on the out-of-fold predictions (scale {scale})"
        )
        calibrations[negotiation] = ranges.calibrate(
            x, y, oof_all, seed=seed, listing=design.listing, klass=design.klass
        )
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
        "patterns": pattern_metrics(eval_builder, eval_boosters, calibrations, test_rows, params),
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
        fingerprints=data.fingerprints(frame),
    )


def to_valuer(
    result: TrainResult,
    *,
    data_sha256: str,
    data_report: DataReport,
    source: str,
    data_month: str | None = None,
    price_index: dict[str, Any] | None = None,
) -> Valuer:
    """The Valuer of a training run, to save. ``data_month`` (``YYYY-MM``) is the month whose
    money its prices are in (the listings' month, or the base month they were brought to by
    ``price_index``, described as in :meth:`imovsp.price_index.PriceIndex.describe`)."""
    created = datetime.now(UTC).replace(microsecond=0)
    fingerprint = json.dumps([data_sha256, result.params], sort_keys=True, default=str)
    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:8]
    feature_meta, _ = result.builder.state()
    metadata = {
        "version": f"{created:%Y%m%dT%H%M%SZ}-{digest}",
        "created_at": created.isoformat().replace("+00:00", "Z"),
        "data": {
            "source": source,
            "sha256": data_sha256,
            "rows": data_report.rows_kept,
            "report": data_report.to_dict(),
            "month": data_month or data_report.base_month or DEFAULT_DATA_MONTH,
            **({"price_index": price_index} if price_index else {}),
        },
        "negotiations": list(result.boosters),
        "feature_schema": feature_meta,
        "target": "log(price)",
        "members": {
            suffix or "tuned": {"target": target, "params": extra, "trees_factor": factor}
            for suffix, extra, factor, target in MEMBERS
        },
        "params": result.params,
        "cv": result.cv,
        "metrics": result.metrics,
        "ranges": {
            "method": "normalised split-conformal on out-of-fold residuals of the train rows"
            " and their masked copies (signed scores: the misses are shared between the two"
            " sides), calibrated per class of fields given (Mondrian)",
            "classes": {
                "groups": list(GROUPS),
                "min_rows": ranges.MIN_CLASS_ROWS,
            },
            "default_level": DEFAULT_LEVEL,
            "levels": [MIN_LEVEL, MAX_LEVEL],
            "sigma_floor": {n: c.floor for n, c in result.calibrations.items()},
            "typical_sigma": {n: c.typical_sigma for n, c in result.calibrations.items()},
        },
    }
    if result.reference is not None:
        metadata["reference"] = result.reference.state()[0]
    return Valuer(
        result.builder,
        result.boosters,
        metadata,
        calibrations=result.calibrations,
        listings=result.comparables,
        reference=result.reference,
        fingerprints=result.fingerprints,
    )


def _grid_size() -> int:
    return int(np.prod([len(v) for v in GRID.values()]))
