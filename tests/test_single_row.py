"""The single-property fast paths give exactly the numbers of the batch paths."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from imovsp import data
from imovsp.features import Property, UnknownDistrictError, column_properties, frame_columns
from imovsp.neighbours import median_rows
from imovsp.single_row import SingleRowPredictor
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import ROWS_TOGETHER, Valuer


@pytest.mark.parametrize("k", [1, 2, 5, 10, 19, 20])
def test_median_rows_is_numpy_median_to_the_bit(k: int) -> None:
    values = np.random.default_rng(k).normal(size=(200, k))
    np.testing.assert_array_equal(median_rows(values), np.median(values, axis=1))


def test_single_row_predictor_equals_booster_predict(valuer: Valuer) -> None:
    frame = data.validate(synthetic_listings(120, seed=5).astype(str), require_price=False).frame
    for negotiation, model in valuer.boosters.items():
        booster = model.masked.members[-1]
        rows = frame[frame[data.NEGOTIATION] == negotiation]
        x = valuer.builder.matrix(frame_columns(rows), negotiation=negotiation)
        x[::5, 5] = np.nan  # missing values take the same branches
        fast = SingleRowPredictor(booster, x.shape[1])
        single = np.array([fast.predict(row) for row in x])
        np.testing.assert_array_equal(single, booster.predict(x))


def test_single_row_predictor_refuses_a_wrong_width(valuer: Valuer) -> None:
    booster = next(iter(valuer.boosters.values())).listed.members[0]
    fast = SingleRowPredictor(booster, booster.num_feature())
    with pytest.raises(ValueError, match=f"expected one row of {booster.num_feature()} features"):
        fast.predict(np.zeros(3))


def partly_given(n: int, seed: int) -> pd.DataFrame:
    """Validated synthetic listings with fields left out the way people leave them out (empty
    cells), so that both of the routed ensembles and several range classes are used."""
    raw = synthetic_listings(n, seed=seed).astype(str)
    raw.loc[::3, ["Toilets", "Suites"]] = ""
    raw.loc[1::4, ["Latitude", "Longitude"]] = ""
    raw.loc[2::5, ["Elevator", "New", "Rooms"]] = ""
    raw.loc[::7, "Condo"] = "0"
    return data.validate(raw, require_price=False, allow_missing=True).frame


def test_predict_one_equals_predict_frame(valuer: Valuer) -> None:
    frame = partly_given(60, seed=8)
    batch = valuer.predict_frame(frame)
    cols = frame_columns(frame)
    props = column_properties(cols)
    assert {p.not_given for p in props} > {()}  # complete and partial ones
    for i, prop in enumerate(props):
        assert valuer.predict_one(prop) == batch[i]


def test_feature_row_equals_the_matrix_row_to_the_bit(valuer: Valuer) -> None:
    frame = partly_given(150, seed=12)
    cols = frame_columns(frame)
    assert np.isnan(cols["latitude"]).any()  # some locations estimated from the district
    for negotiation in data.NEGOTIATIONS:
        m = cols["negotiation"] == negotiation
        sub = {k: v[m] for k, v in cols.items()}
        sub["district"] = np.array([valuer.builder.resolve_district(d) for d in sub["district"]])
        batch = valuer.builder.matrix(sub, negotiation=negotiation)
        props = column_properties(sub)
        assert len(props) == len(batch)
        for i, prop in enumerate(props):
            np.testing.assert_array_equal(valuer.builder.row(prop), batch[i : i + 1])


@pytest.mark.parametrize(
    ("negotiations", "n", "explain", "comparables"),
    [
        (("sale",), ROWS_TOGETHER - 1, False, 0),  # row by row
        (("sale",), ROWS_TOGETHER, False, 0),  # one matrix
        (("rent",), ROWS_TOGETHER + 3, True, 3),  # one matrix, with reasons and comparables
        (("sale", "rent"), 40, False, 0),  # both, interleaved
    ],
)
def test_value_many_equals_value_one_by_one_to_the_bit(
    valuer: Valuer, negotiations: tuple[str, ...], n: int, explain: bool, comparables: int
) -> None:
    frame = partly_given(200, seed=30 + n)
    frame = frame[frame[data.NEGOTIATION].isin(negotiations)].head(n)
    cols = frame_columns(frame)
    cols["district"] = np.array([valuer.builder.resolve_district(d) for d in cols["district"]])
    props = column_properties(cols)
    assert len(props) == n
    options = {"level": 0.9, "explain": explain, "comparables": comparables}
    together = valuer.value_many(props, **options)
    assert len(together) == n
    for prop, valuation in zip(props, together, strict=True):
        # The property, price, range, hints, reasons and comparables, in input order.
        assert valuation == valuer.value(prop, **options)


def test_value_many_refuses_the_whole_call_for_one_unknown_district(valuer: Valuer) -> None:
    good = Property("sale", valuer.builder.districts_[0], 60.0, 2, 1, 0, 1)
    with pytest.raises(UnknownDistrictError):
        valuer.value_many([good, replace(good, district="Atlantis")])
    assert valuer.value_many([]) == []
