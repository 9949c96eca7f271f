"""Data tests: the loader rejects what it must, cleans what it can, and counts everything."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from imovsp import data
from imovsp.synthetic import synthetic_listings


def raw(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame as the loader reads it: every value a string."""
    return frame.astype(str)


def test_read_listings_missing_columns_names_them(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    synthetic_listings(5).drop(columns=["Size", "District"]).to_csv(path, index=False)
    with pytest.raises(data.DataError, match=r"missing required column\(s\): Size, District"):
        data.read_listings(path)


def test_read_listings_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(data.DataError, match="listings file not found"):
        data.read_listings(tmp_path / "absent.csv")


def test_read_listings_binary_file_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xff\xfe\x00\x81garbage\x00")
    with pytest.raises(data.DataError, match="cannot read"):
        data.read_listings(path)


def test_price_is_optional_when_scoring() -> None:
    frame = raw(synthetic_listings(5).drop(columns=["Price"]))
    assert data.validate(frame, require_price=False).report.rows_kept == 5
    with pytest.raises(data.DataError, match="Price"):
        data.validate(frame, require_price=True)


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("Size", "abc", "Size is not a number"),
        ("Size", "0", "Size must be > 0"),
        ("Size", "-3", "Size must be > 0"),
        ("Price", "0", "Price must be from 100 to 1,000,000,000"),
        ("Price", "5e-324", "Price must be from 100 to 1,000,000,000"),
        ("Price", "2e9", "Price must be from 100 to 1,000,000,000"),
        ("Price", "", "Price is not a number"),
        ("Rooms", "2.5", "Rooms must be a whole number ≥ 0"),
        ("Elevator", "2", "Elevator must be 0 or 1"),
        ("Furnished", "yes", "Furnished is not a number"),
        ("Negotiation Type", "lease", "Negotiation Type must be sale or rent"),
        ("District", "  ", "District is empty"),
        ("Condo", "-1", "Condo must be ≥ 0"),
        ("Size", "inf", "Size is not a number"),
    ],
)
def test_unusable_rows_are_rejected_and_counted_by_reason(
    column: str, value: str, reason: str
) -> None:
    frame = raw(synthetic_listings(10, seed=1))
    frame.loc[3, column] = value
    validated = data.validate(frame)
    assert validated.errors[3] == reason
    assert validated.errors.drop(index=3).isna().all()
    assert validated.report.rejected == {reason: 1}
    assert validated.report.rows_kept == 9
    assert 3 not in validated.frame.index


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("Size", "5", "Size must be from 10 to 2,000 m²"),
        ("Size", "2500", "Size must be from 10 to 2,000 m²"),
        ("Rooms", "21", "Rooms must be at most 20"),
        ("Parking", "31", "Parking must be at most 30"),
        ("Condo", "0.5", "Condo must be 0 (unknown) or from 1 to 100,000"),
        ("Condo", "1e6", "Condo must be 0 (unknown) or from 1 to 100,000"),
    ],
)
def test_rows_to_value_are_refused_where_the_api_refuses_them(
    column: str, value: str, reason: str
) -> None:
    # One set of limits (imovsp.bounds) for the API, the CLI and batch scoring; training
    # listings are not held to them.
    frame = raw(synthetic_listings(10, seed=1))
    frame.loc[3, column] = value
    assert data.validate(frame, require_price=False, allow_missing=True).errors[3] == reason
    assert data.validate(frame).errors[3] is None


def test_district_suffix_is_removed() -> None:
    frame = raw(synthetic_listings(3, seed=2))
    frame["District"] = ["Santana/São Paulo", " Moema ", "Vila Mariana/São Paulo"]
    assert list(data.validate(frame).frame["District"]) == ["Santana", "Moema", "Vila Mariana"]


def test_zero_and_outside_coordinates_become_missing_and_swapped_are_fixed() -> None:
    frame = raw(synthetic_listings(4, seed=3, quirks=False))
    frame.loc[0, ["Latitude", "Longitude"]] = ["0", "0"]
    frame.loc[1, ["Latitude", "Longitude"]] = ["-46.63", "-23.55"]
    frame.loc[2, ["Latitude", "Longitude"]] = ["-22.90", "-43.20"]  # Rio de Janeiro
    validated = data.validate(frame)
    clean = validated.frame
    assert clean.loc[0, ["Latitude", "Longitude"]].isna().all()
    assert tuple(clean.loc[1, ["Latitude", "Longitude"]]) == (-23.55, -46.63)
    assert clean.loc[2, ["Latitude", "Longitude"]].isna().all()
    assert validated.report.coordinates_swapped == 1
    assert validated.report.coordinates_missing == 2


def test_exact_duplicates_are_removed_before_training_and_counted() -> None:
    frame = raw(synthetic_listings(6, seed=4))
    doubled = pd.concat([frame, frame.iloc[[0, 2]]], ignore_index=True)
    validated = data.prepare_training(doubled)
    assert validated.report.duplicates_removed == 2
    assert validated.report.rows_kept == 6
    assert len(validated.frame) == 6


def test_report_accounts_for_every_row() -> None:
    frame = raw(synthetic_listings(50, seed=5))
    frame.loc[[1, 2], "Size"] = "0"
    frame.loc[4, "Negotiation Type"] = "swap"
    report = data.validate(frame).report
    assert report.rows_read == report.rows_kept + report.rows_rejected == 50
    assert "3 rejected" in report.summary()


def test_fold_matches_names_whatever_the_case_and_accents() -> None:
    assert data.fold("SÃO MIGUEL/São Paulo") == data.fold("sao miguel") == "sao miguel"


@pytest.mark.real_data
def test_real_file_loads_with_its_known_quirks(real_data: Path) -> None:
    frame, report = data.load_training_data(real_data)
    assert report.rows_read == 11602
    assert report.duplicates_removed > 0
    assert report.coordinates_missing > 0
    assert frame["District"].nunique() == 96
    assert not frame["District"].str.contains("/").any()
