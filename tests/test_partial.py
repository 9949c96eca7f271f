"""Partial descriptions: fields not given are priced as unknown, ranges are calibrated for the
fields given, and every interface says what would narrow the range."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imovsp import data, ranges, training
from imovsp.batch import ERROR, NOT_GIVEN, PREDICTED, score_frame
from imovsp.features import (
    FIELD_SETS,
    GROUPS,
    N_CLASSES,
    OPTIONAL,
    Property,
    column_properties,
    frame_columns,
    listed_columns,
    mask,
    not_given_columns,
    pattern_class,
)
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer


def class_groups(klass: int) -> tuple[str, ...]:
    """The groups of :data:`GROUPS` that calibration class ``klass`` gives."""
    return tuple(name for bit, name in enumerate(GROUPS) if klass >> bit & 1)


FULL = Property(
    "sale",
    "Pinheiros",
    95,
    3,
    2,
    1,
    2,
    condo_fee=900,
    elevator=True,
    furnished=False,
    swimming_pool=True,
    new=False,
    latitude=-23.565,
    longitude=-46.69,
)


def test_pattern_classes_set_one_bit_per_group_given_whole() -> None:
    assert pattern_class(()) == N_CLASSES - 1
    assert pattern_class(OPTIONAL) == 0
    assert class_groups(pattern_class(("location",))) == ("condo_fee", "counts", "flags")
    # A count missing is enough to leave the counts group out; flags are one group.
    assert "counts" not in class_groups(pattern_class(("suites",)))
    assert class_groups(pattern_class(("new", "condo_fee"))) == ("location", "counts")


def test_masked_copies_blank_exactly_the_fields_not_given() -> None:
    frame = data.prepare_training(synthetic_listings(200, seed=3).astype(str)).frame
    cols = frame_columns(frame)
    for given in FIELD_SETS.values():
        masked = mask(cols, [f for f in OPTIONAL if f not in given])
        for missing, row_given in zip(
            not_given_columns(masked), not_given_columns(cols), strict=True
        ):
            assert set(missing) == set(row_given) | (set(OPTIONAL) - set(given))
    copies = training.masked_copies(cols, seed=1)
    assert len(copies) == len(FIELD_SETS) + 1  # as listed, each partial set, one random mix
    assert copies[0] is cols
    random_classes = {pattern_class(m) for m in not_given_columns(copies[-1])}
    assert len(random_classes) > 8  # the random copy reaches classes no named set does


def test_copies_of_a_listing_stay_in_one_fold() -> None:
    listing = np.tile(np.arange(50), 6)
    for fit_rows, held in ranges.listing_folds(listing, folds=4, seed=0):
        assert not set(listing[fit_rows]) & set(listing[held])
        assert len(held) % 6 == 0


def test_prices_depend_only_on_fields_given_not_on_typical_values(valuer: Valuer) -> None:
    partial = valuer.prepare({"negotiation": "sale", "district": "Pinheiros", "size_m2": 95})
    assert partial.not_given == OPTIONAL
    row = valuer.builder.row(partial)[0]
    assert np.isnan(row[1:10]).all()  # counts, condo fee and flags reach the model unknown
    # The listed ensemble prices only fully described flats; this one goes to the masked one.
    assert not partial.listed
    assert FULL.listed


def test_ranges_widen_as_fields_are_missing_and_hints_name_them(valuer: Valuer) -> None:
    full = valuer.value(FULL)
    assert full.not_given == ()
    assert full.sharpen == ()
    counts = {"rooms": 3, "toilets": 2, "suites": 1, "parking": 2}
    basic = valuer.value(
        valuer.prepare({"negotiation": "sale", "district": "Pinheiros", "size_m2": 95, **counts})
    )
    assert basic.not_given == (
        "condo_fee", "elevator", "furnished", "swimming_pool", "new", "location"
    )  # fmt: skip
    assert basic.typical is not None
    assert set(basic.typical) == set(basic.not_given) - {"location"}
    now = basic.width_pct()
    assert now is not None
    for hint in basic.sharpen:
        assert hint.width_pct < now
        assert set(hint.fields) <= set(basic.not_given)


def test_reasons_say_not_given_and_still_add_up(valuer: Valuer) -> None:
    prop = valuer.prepare(
        {"negotiation": "rent", "district": "Pinheiros", "size_m2": 60, "rooms": 2}
    )
    valuation = valuer.value(prop, explain=True)
    assert valuation.reasons is not None
    assert valuation.baseline is not None
    said = {r.feature: r.value for r in valuation.reasons}
    assert said["toilets"] == "not given"
    assert said["condo_fee"] == "not given"
    assert said["location"] == "Pinheiros (coordinates not given)"
    assert said["rooms"] == "2"
    total = valuation.baseline + sum(r.effect_brl for r in valuation.reasons)
    assert total == pytest.approx(valuation.price, rel=1e-9)


def test_batch_rows_with_empty_cells_are_valued_and_say_what_was_not_given(
    valuer: Valuer,
) -> None:
    raw = synthetic_listings(12, seed=17).astype(str)
    raw.loc[0, ["Rooms", "Toilets"]] = ""
    raw.loc[1, ["Latitude", "Longitude", "Elevator"]] = ""
    raw.loc[2, "Condo"] = "0"
    raw.loc[3, "Rooms"] = "two"  # not empty: still a mistake
    scored = score_frame(valuer, raw)
    assert scored[NOT_GIVEN][0].split(";")[:2] == ["rooms", "toilets"]
    assert set(scored[NOT_GIVEN][1].split(";")) >= {"elevator", "location"}
    assert "condo_fee" in scored[NOT_GIVEN][2].split(";")
    assert scored[ERROR][3] == "Rooms is not a number"
    assert scored[PREDICTED][:3].notna().all()
    assert scored[PREDICTED].isna()[3]


def test_training_listings_must_still_be_complete() -> None:
    raw = synthetic_listings(10, seed=2).astype(str)
    raw.loc[0, "Rooms"] = ""
    validated = data.validate(raw)
    assert validated.errors[0] == "Rooms is not a number"


def test_training_reports_each_field_set_with_the_rule_of_thumb(
    trained: training.TrainResult,
) -> None:
    patterns = trained.metrics["patterns"]
    assert list(patterns) == list(FIELD_SETS)
    for per in patterns.values():
        for m in per.values():
            assert 0 < m["mape"] < 100
            assert 0 <= m["coverage80"] <= m["coverage90"] <= 100
            assert m["width80"] < m["width90"]
            assert m["thumb_mape"] > 0
    # How accuracy and widths change with the fields given is a property of real data (see
    # docs/benchmarks.md): on the small synthetic file a price depends on little beyond
    # district and size.


def test_calibration_classes_survive_the_artifact(valuer: Valuer, models_dir: Path) -> None:
    again = Valuer.load(models_dir / (models_dir / "CURRENT").read_text().strip())
    for n, calibration in valuer.calibrations.items():
        loaded = again.calibrations[n]
        assert set(loaded.classes) == set(calibration.classes)
        assert calibration.classes, "the named field sets have classes of their own"
        for k, c in calibration.classes.items():
            np.testing.assert_array_equal(loaded.classes[k].scores, c.scores)
            assert loaded.ends(0.8, k) == calibration.ends(0.8, k)


def test_a_class_without_its_own_scores_uses_the_pooled_ones() -> None:
    pooled = np.linspace(-2, 2, 101)
    own = ranges.ClassScores(np.linspace(-1, 1, 301), 0.2)
    calibration = ranges.Calibration(
        spread=None,  # type: ignore[arg-type]
        scores=pooled,
        floor=0.01,
        typical_sigma=0.2,
        classes={3: own},
    )
    assert calibration.ends(0.8, 3) != calibration.ends(0.8, 5)
    assert calibration.ends(0.8, 5) == calibration.ends(0.8)
    assert calibration.of_class(5).scores is pooled
    lo, hi = calibration.ends(0.8, 3)
    assert -1 <= lo < 0 < hi <= 1


def test_scoring_writes_the_not_given_column_before_the_error(valuer: Valuer) -> None:
    raw = synthetic_listings(5, seed=4).astype(str)
    raw.loc[0, "Parking"] = ""
    scored = score_frame(valuer, raw)
    assert list(scored.columns[len(raw.columns) :]) == [
        "predicted_price",
        "price_low",
        "price_high",
        NOT_GIVEN,
        ERROR,
        "as_of",
        "index_factor",
    ]
    assert scored[NOT_GIVEN][0].startswith("parking")
    assert isinstance(scored, pd.DataFrame)


def test_the_property_routes_as_its_columns_do(valuer: Valuer) -> None:
    raw = synthetic_listings(80, seed=23).astype(str)
    raw.loc[::3, "Toilets"] = ""
    raw.loc[1::4, ["Latitude", "Longitude"]] = ""
    raw.loc[2::5, "Condo"] = "0"
    frame = data.validate(raw, require_price=False, allow_missing=True).frame
    cols = frame_columns(frame)
    props = column_properties(cols)
    assert [p.listed for p in props] == listed_columns(cols).tolist()
    assert {p.listed for p in props} == {True, False}
    # A condo fee of 0, as listings give it, goes to the listed ensemble; none at all does not.
    zero = next(p for p in props if p.listed and p.condo_fee == 0)
    assert "condo_fee" in zero.not_given
    assert not replace(zero, condo_fee=None).listed


def test_evaluate_shows_the_rows_the_model_trained_on_apart(
    valuer: Valuer, listings_csv: Path, tmp_path: Path, env: None
) -> None:
    from click.testing import CliRunner

    from imovsp.cli import cli

    seen_rows = pd.read_csv(listings_csv).head(40)
    unseen = synthetic_listings(60, seed=99)
    mixed = tmp_path / "mixed.csv"
    pd.concat([seen_rows, unseen]).to_csv(mixed, index=False)
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(mixed), "--json"])
    assert result.exit_code == 0, result.output
    assert "40 of 100 rows were in the model's training data" in result.output
    payload = json.loads(result.output[result.output.index("{") :])
    assert payload["seen_in_training"] == 40
    assert payload["rows"] == 60  # the metrics are of the rows it did not see
    assert set(payload["metrics_seen"]) <= {"sale", "rent"}
    only_seen = tmp_path / "seen.csv"
    seen_rows.to_csv(only_seen, index=False)
    result = CliRunner().invoke(cli, ["evaluate", "--data", str(only_seen)])
    assert result.exit_code == 0, result.output
    assert "all 40 rows were in the model's training data" in result.output


def test_hints_name_the_groups_whose_class_is_narrower_narrowest_first() -> None:
    from imovsp.features import GROUPS, calibration_class
    from imovsp.valuation import sharpen

    scores = np.linspace(-1, 1, 401)
    none_given = calibration_class(OPTIONAL, listed=False)
    with_location = calibration_class(tuple(f for f in OPTIONAL if f != "location"), listed=False)
    full = calibration_class((), listed=True)
    classes = {
        none_given: ranges.ClassScores(scores, 0.40),
        with_location: ranges.ClassScores(scores, 0.25),
        none_given | 1 << list(GROUPS).index("counts"): ranges.ClassScores(scores, 0.35),
        # Flags narrow nothing here: their class is as wide as none given.
        none_given | 1 << list(GROUPS).index("flags"): ranges.ClassScores(scores, 0.40),
        full: ranges.ClassScores(scores, 0.10),
    }
    calibration = ranges.Calibration(
        spread=None,  # type: ignore[arg-type]
        scores=scores,
        floor=0.01,
        typical_sigma=0.5,  # the pooled scores are wider than any class: none is used here
        classes=classes,
    )
    hints = sharpen(calibration, 0.40, 0.8, none_given, OPTIONAL, 1.0)
    assert [h.fields for h in hints] == [
        ("location",),
        ("rooms", "toilets", "suites", "parking"),
    ]
    assert hints[0].width_pct < hints[1].width_pct < 100 * calibration.width(0.40, 0.8, none_given)
    # Missing only the condo fee: giving it makes the flat fully described, the listed class.
    only_condo = calibration_class(("condo_fee",), listed=False)
    calibration.classes[only_condo] = ranges.ClassScores(scores, 0.30)
    (hint,) = sharpen(calibration, 0.30, 0.8, only_condo, ("condo_fee",), 1.0)
    assert hint.fields == ("condo_fee",)
    assert hint.width_pct == round(100 * calibration.width(0.10, 0.8, full), 1)
    assert sharpen(calibration, 0.10, 0.8, full, (), 1.0) == ()


def test_classes_of_whole_columns_equal_each_rows_class() -> None:
    from imovsp.features import calibration_class, calibration_classes

    frame = data.prepare_training(synthetic_listings(300, seed=5).astype(str)).frame
    copies = training.masked_copies(frame_columns(frame), seed=2)
    for cols in copies:
        listed = listed_columns(cols)
        expected = [
            calibration_class(missing, listed=bool(route))
            for missing, route in zip(not_given_columns(cols), listed, strict=True)
        ]
        assert calibration_classes(cols).tolist() == expected
    assert len({k for c in copies for k in calibration_classes(c).tolist()}) > 10
