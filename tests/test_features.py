"""Code tests of the one feature path: frame and single property give the same numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imovsp import data, geo, training
from imovsp.builder import FeatureBuilder
from imovsp.features import FEATURES, Property, UnknownDistrictError, frame_columns, project
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer


def test_single_property_path_equals_frame_path(valuer: Valuer) -> None:
    frame = data.validate(synthetic_listings(40, seed=11).astype(str), require_price=False).frame
    for negotiation in data.NEGOTIATIONS:
        rows = frame[frame["Negotiation Type"] == negotiation]
        batch = valuer.builder.matrix(frame_columns(rows), negotiation=negotiation)
        for i, (_, row) in enumerate(rows.iterrows()):
            prop = Property(
                negotiation=negotiation,
                district=row["District"],
                size_m2=row["Size"],
                rooms=row["Rooms"],
                toilets=row["Toilets"],
                suites=row["Suites"],
                parking=row["Parking"],
                condo_fee=row["Condo"],
                elevator=row["Elevator"],
                furnished=row["Furnished"],
                swimming_pool=row["Swimming Pool"],
                new=row["New"],
                latitude=None if pd.isna(row["Latitude"]) else row["Latitude"],
                longitude=None if pd.isna(row["Longitude"]) else row["Longitude"],
            )
            single = valuer.builder.matrix(prop.columns(), negotiation=negotiation)
            np.testing.assert_array_equal(single[0], batch[i])
    assert batch.shape[1] == len(FEATURES)


def test_predict_one_equals_predict_frame(valuer: Valuer) -> None:
    frame = data.validate(synthetic_listings(20, seed=12).astype(str), require_price=False).frame
    batch = valuer.predict_frame(frame)
    for i, (_, row) in enumerate(frame.iterrows()):
        prop = Property(
            negotiation=row["Negotiation Type"],
            district=row["District"],
            size_m2=row["Size"],
            rooms=row["Rooms"],
            toilets=row["Toilets"],
            suites=row["Suites"],
            parking=row["Parking"],
            condo_fee=row["Condo"],
            elevator=bool(row["Elevator"]),
            furnished=bool(row["Furnished"]),
            swimming_pool=bool(row["Swimming Pool"]),
            new=bool(row["New"]),
            latitude=None if pd.isna(row["Latitude"]) else row["Latitude"],
            longitude=None if pd.isna(row["Longitude"]) else row["Longitude"],
        )
        assert valuer.predict_one(prop) == pytest.approx(batch[i], rel=1e-9)


def test_predict_unknown_district_suggests_close_names(valuer: Valuer) -> None:
    with pytest.raises(UnknownDistrictError) as caught:
        valuer.builder.resolve_district("Santanna")
    assert "Santana" in caught.value.suggestions
    assert "closest known: Santana" in str(caught.value)


def test_unknown_district_with_nothing_close_has_no_suggestions(valuer: Valuer) -> None:
    with pytest.raises(UnknownDistrictError) as caught:
        valuer.builder.resolve_district("Xyzzy Qwerty")
    assert caught.value.suggestions == []


@pytest.mark.parametrize(
    "spelling", ["jardim paulista", "JARDIM PAULISTA/São Paulo", " Jardim  Paulista "]
)
def test_district_is_case_and_accent_insensitive(valuer: Valuer, spelling: str) -> None:
    assert valuer.builder.resolve_district(spelling) == "Jardim Paulista"
    assert valuer.builder.resolve_district("sao miguel") == "São Miguel"


def test_missing_location_is_filled_from_the_district_and_flagged(valuer: Valuer) -> None:
    prop = Property("sale", "Moema", 80, 2, 2, 1, 1)
    row = valuer.builder.matrix(prop.columns(), negotiation="sale")[0]
    named = dict(zip(FEATURES, row, strict=True))
    assert named["location_estimated"] == 1.0
    code = valuer.builder.codes_["Moema"]
    lat, lon = valuer.builder.centroids_[code]
    with_centre = Property("sale", "Moema", 80, 2, 2, 1, 1, latitude=lat, longitude=lon)
    located = dict(
        zip(
            FEATURES,
            valuer.builder.matrix(with_centre.columns(), negotiation="sale")[0],
            strict=True,
        )
    )
    assert located["location_estimated"] == 0.0
    assert (located["x_km"], located["y_km"]) == (named["x_km"], named["y_km"])


def test_prepare_leaves_fields_not_given_unknown_in_the_feature_row(valuer: Valuer) -> None:
    prop = valuer.prepare(
        {"negotiation": "rent", "district": "moema", "size_m2": 120, "rooms": 4, "elevator": True}
    )
    assert (prop.district, prop.rooms, prop.elevator) == ("Moema", 4, True)
    assert (prop.toilets, prop.furnished, prop.condo_fee) == (None, None, None)
    assert prop.not_given == (
        "toilets", "suites", "parking", "condo_fee", "furnished", "swimming_pool", "new", "location"
    )  # fmt: skip
    row = dict(zip(FEATURES, valuer.builder.row(prop)[0], strict=True))
    for name in ("toilets", "suites", "parking", "condo_fee", "furnished", "swimming_pool", "new"):
        assert np.isnan(row[name]), name  # unknown, not a typical value
    assert (row["rooms"], row["elevator"], row["location_estimated"]) == (4.0, 1.0, 1.0)


def test_typical_values_are_plausible_context(valuer: Valuer) -> None:
    small, large = valuer.builder.typical(35), valuer.builder.typical(200)
    assert small["rooms"] <= large["rooms"]
    assert 0 < small["condo_fee"] < large["condo_fee"]
    assert valuer.typical(35, ["rooms", "location"]) == {"rooms": small["rooms"]}


def test_training_rows_do_not_see_their_own_price() -> None:
    frame = data.validate(synthetic_listings(300, seed=13).astype(str)).frame
    sale = frame[frame["Negotiation Type"] == "sale"].reset_index(drop=True)
    builder = FeatureBuilder().fit(sale)
    cols = frame_columns(sale)
    own = np.log(sale["Price"].to_numpy(float) / sale["Size"].to_numpy(float))
    with_self = builder.matrix(cols, negotiation="sale")
    left_out = builder.matrix(cols, negotiation="sale", self_ids=np.arange(len(sale)))
    j = FEATURES.index("nn5_log_price_m2")
    # With itself among its neighbours a row would partly see its own price; left out, it is not.
    assert not np.allclose(with_self[:, j], left_out[:, j])
    assert np.mean(np.isclose(left_out[:, j], own)) < 0.05


def test_value_reports_district_median_and_estimated_location(valuer: Valuer) -> None:
    valuation = valuer.value(
        valuer.prepare(
            {
                "negotiation": "rent",
                "district": "moema",
                "size_m2": 70,
                "rooms": 2,
                "toilets": 2,
                "suites": 1,
                "parking": 1,
            }
        )
    )
    assert valuation.property.district == "Moema"
    assert valuation.location_estimated is True
    assert valuation.price_m2 == pytest.approx(valuation.price / 70)
    assert valuation.district_median_price_m2 is not None
    assert valuation.district_median_price_m2 > 0
    assert valuation.not_given == (
        "condo_fee", "elevator", "furnished", "swimming_pool", "new", "location"
    )  # fmt: skip
    assert valuation.model_version == valuer.version


@pytest.mark.parametrize(
    ("lat", "lon", "message"),
    [(-22.9, -43.2, "outside São Paulo"), (-23.55, None, "both latitude and longitude")],
)
def test_value_refuses_bad_coordinates(
    valuer: Valuer, lat: float, lon: float | None, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        valuer.value(Property("sale", "Moema", 70, 2, 2, 1, 1, latitude=lat, longitude=lon))


def test_a_district_without_coordinates_is_placed_in_the_district(valuer: Valuer) -> None:
    # The synthetic listings sit where the real ones' medians do: Jardim Ângela's, Iguatemi's
    # and Anhanguera's more than 20 km from the district. A valuation without coordinates
    # must not be placed there, in another part of the city.
    city = geo.geography()
    builder = valuer.builder
    for name, (lat, lon) in zip(builder.districts_, builder.centroids_, strict=True):
        km = float(city.distance_km(lat, lon, name)[0])
        assert km <= geo.NEAR_KM, f"{name}: placed {km:.1f} km outside it"
    lat, lon = builder.centroids_[builder.codes_["Jardim Ângela"]]
    assert city.district_at(lat, lon).official == "JARDIM ANGELA"  # type: ignore[union-attr]
    # Nor is its listings' median price per m² said to be the district's.
    assert builder.district_price_m2("Jardim Ângela", "sale") is None
    assert builder.district_price_m2("Pinheiros", "sale") is not None


def test_training_places_a_listing_without_coordinates_where_its_districts_listings_are(
    trained: training.TrainResult, listings_csv: Path
) -> None:
    # Placed at the district's own point, the synthetic Jardim Ângela listings (east-zone
    # prices, as the real ones) would teach the model east-zone prices in the far south.
    builder = trained.builder
    code = builder.codes_["Jardim Ângela"]
    listed_at = builder.listing_centres_[code]
    assert float(geo.geography().distance_km(*listed_at, "Jardim Ângela")[0]) > 10
    prop = Property("sale", "Jardim Ângela", 60, 2, 1, 0, 1)
    served = dict(zip(FEATURES, builder.matrix(prop.columns(), negotiation="sale")[0], strict=True))
    trained_as = dict(
        zip(
            FEATURES,
            builder.matrix(prop.columns(), negotiation="sale", listings=True)[0],
            strict=True,
        )
    )
    assert (served["x_km"], served["y_km"]) == tuple(project(*builder.centroids_[code])[0])
    assert (trained_as["x_km"], trained_as["y_km"]) == tuple(project(*listed_at)[0])
    # Training's design matrix (listings and their masked copies) places them there.
    frame, _ = data.load_training_data(listings_csv)
    x = training._design(builder, frame, "sale").x
    column = {name: j for j, name in enumerate(FEATURES)}
    rows = (x[:, column["district"]] == code) & (x[:, column["location_estimated"]] == 1)
    assert rows.any()
    np.testing.assert_array_equal(x[rows, column["x_km"]], project(*listed_at)[0, 0])


@pytest.mark.parametrize("condo_fee", [None, 0, 0.0, 850.0])
def test_property_methods_written_field_by_field_equal_their_loops_over_the_names(
    condo_fee: float | None,
) -> None:
    """``as_dict``, ``listed`` and ``not_given`` name each field (they run on every request):
    they give what the loops over COUNTS, FLAGS, TYPICAL and OPTIONAL give, for every field
    given or not."""
    from itertools import product

    from imovsp.features import COUNTS, FLAGS, LOCATION, OPTIONAL, TYPICAL

    full = {
        "rooms": 3,
        "toilets": 2.0,
        "suites": 1,
        "parking": 0,
        "elevator": True,
        "furnished": 0,
        "swimming_pool": float("nan"),
        "new": False,
    }
    names = [*full, LOCATION]
    for given in product([False, True], repeat=len(names)):
        fields = {n: full[n] for n, g in zip(names, given, strict=True) if g and n in full}
        if given[-1]:
            fields.update(latitude=-23.56, longitude=-46.69)
        p = Property("sale", "Pinheiros", 70.0, condo_fee=condo_fee, **fields)  # type: ignore[arg-type]

        def maybe(kind: type, value: object) -> object:
            if value is None or (isinstance(value, float) and np.isnan(value)):
                return None
            return kind(value)

        assert p.as_dict() == {
            "negotiation": "sale",
            "district": "Pinheiros",
            "size_m2": 70.0,
            **{n: maybe(int, getattr(p, n)) for n in COUNTS},
            "condo_fee": p.condo_fee or None,
            **{n: maybe(bool, getattr(p, n)) for n in FLAGS},
            "latitude": p.latitude,
            "longitude": p.longitude,
        }
        order = ["negotiation", "district", "size_m2", *COUNTS, "condo_fee", *FLAGS]
        assert list(p.as_dict()) == [*order, "latitude", "longitude"]
        located = p.latitude is not None and p.longitude is not None
        assert p.listed == (located and all(getattr(p, n) is not None for n in TYPICAL))
        known = {n: getattr(p, n) is not None for n in TYPICAL}
        known.update(condo_fee=bool(p.condo_fee), location=located)
        assert p.not_given == tuple(n for n in OPTIONAL if not known[n])
