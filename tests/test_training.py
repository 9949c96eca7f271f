"""Training is repeatable, honest about its split, and compares itself with the seed approach."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imovsp import data, training
from imovsp.synthetic import synthetic_listings


def small_frame(n: int = 600, seed: int = 41) -> pd.DataFrame:
    return data.prepare_training(synthetic_listings(n, seed=seed).astype(str)).frame.reset_index(
        drop=True
    )


def test_same_seed_gives_the_same_model() -> None:
    frame = small_frame()
    a = training.train(frame, seed=9, folds=3, compare_seed=False)
    b = training.train(frame, seed=9, folds=3, compare_seed=False)
    for negotiation in a.boosters:
        assert a.params[negotiation] == b.params[negotiation]
        x = a.builder.matrix(
            {k: v[:20] for k, v in training.frame_columns(frame).items()}, negotiation=negotiation
        )
        for listed in (np.ones(len(x), bool), np.zeros(len(x), bool)):
            np.testing.assert_array_equal(
                a.boosters[negotiation].predict(x, listed=listed),
                b.boosters[negotiation].predict(x, listed=listed),
            )


def test_split_keeps_test_rows_apart_and_stratifies() -> None:
    frame = small_frame()
    train, test = training.split(frame, test_size=0.2, seed=1)
    assert len(train) + len(test) == len(frame)
    key = list(frame.columns)
    assert train.merge(test, on=key).empty
    share = (test["Negotiation Type"] == "sale").mean()
    assert abs(share - (frame["Negotiation Type"] == "sale").mean()) < 0.02


def test_metrics_cover_both_models_and_both_negotiations(trained: training.TrainResult) -> None:
    test = trained.metrics["test"]
    assert set(test) == {"imovsp", "seed"}
    for model in test.values():
        assert set(model) == {"sale", "rent"}
        for m in model.values():
            assert {"mape", "median_ape", "within_10", "within_20", "r2", "mae"} <= set(m)
    # On data with a clear structure the tuned model must beat the seed approach.
    for n in ("sale", "rent"):
        assert test["imovsp"][n]["mape"] < test["seed"][n]["mape"]


def test_tuning_records_the_grid_and_chooses_a_scale(trained: training.TrainResult) -> None:
    for negotiation, log in trained.cv.items():
        assert len(log["trials"]) == training._grid_size()
        assert log["best"] in log["trials"]
        assert training.SCALES[0] <= trained.params[negotiation]["scale"] <= training.SCALES[-1]
        oof, actual = trained.oof[negotiation]
        assert len(oof) == len(actual) > 0


def test_best_scale_minimises_relative_error() -> None:
    actual = np.array([100.0, 100.0, 100.0])
    assert training.best_scale(actual, np.array([110.0, 110.0, 110.0])) == 0.92
    assert training.best_scale(actual, actual) == 1.0
