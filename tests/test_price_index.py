"""The price index: the shipped table, a deployment's file refused whole when it cannot be
trusted, months and factors, and a valuation moved to another month and back."""

from __future__ import annotations

from pathlib import Path

import pytest

from imovsp import as_of, price_index
from imovsp.price_index import PriceIndexError
from imovsp.settings import Settings
from imovsp.valuer import Valuer

HEADER = "month,rooms,rent_index,rent_price_m2,sale_index,sale_price_m2\n"


def table(rows: list[str]) -> str:
    return HEADER + "".join(r + "\n" for r in rows)


def test_shipped_index_covers_2008_to_2025_and_gives_the_published_rise_since_april_2019() -> None:
    index = price_index.load()
    assert index.series == "total"
    assert (index.first("sale"), index.last("sale")) == ("2008-01", "2025-08")
    assert (index.first("rent"), index.last("rent")) == ("2008-01", "2025-07")
    # The data README: sale ×1.32 and rent ×1.61 from April 2019 to the last month.
    assert index.factor("sale", "2019-04", "2025-08") == pytest.approx(276.4755 / 209.3214)
    assert round(index.factor("sale", "2019-04", "2025-08"), 2) == 1.32
    assert round(index.factor("rent", "2019-04", "2025-07"), 2) == 1.61
    assert index.factor("sale", "2019-04", "2019-04") == 1.0


def test_factor_there_and_back_is_one_and_factors_chain() -> None:
    index = price_index.load()
    there = index.factor("rent", "2012-03", "2024-11")
    back = index.factor("rent", "2024-11", "2012-03")
    assert there * back == pytest.approx(1.0, rel=1e-12)
    via = index.factor("rent", "2012-03", "2019-04") * index.factor("rent", "2019-04", "2024-11")
    assert via == pytest.approx(there, rel=1e-12)


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (["2019-01,total,100,1,100,1", "2019-03,total,102,1,102,1"], "no value for 2019-02"),
        (["2019-01,total,100,1,100,1", "2019-13,total,101,1,101,1"], "'2019-13' is not a month"),
        (["2019-01,total,100,1,abc,1"], "sale_index is not a number"),
        (["2019-01,total,-5,1,100,1"], "rent_index must be a positive number"),
        (["2019-01,total,100,1,100,1", "2019-01,total,100,1,100,1"], "appears twice"),
        (["2019-01,1,100,1,100,1"], "no sale_index values for rooms=total"),
        (["2019-01,total,100,1"], "wrong number of fields"),
    ],
)
def test_a_malformed_or_incomplete_index_file_is_refused_saying_where(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    path = tmp_path / "index.csv"
    path.write_text(table(rows), encoding="utf-8")
    with pytest.raises(PriceIndexError, match=message):
        price_index.load(path)


def test_an_index_file_without_the_index_columns_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "index.csv"
    path.write_text("month,rooms,sale_price_m2\n2019-01,total,100\n", encoding="utf-8")
    with pytest.raises(PriceIndexError, match="missing column\\(s\\): sale_index, rent_index"):
        price_index.load(path)


def test_a_newer_index_file_supplied_by_a_deployment_is_used(tmp_path: Path) -> None:
    shipped = price_index.shipped_text()
    newer = shipped + "2025-09,total,237.0,62.0,277.5,11760.0\n"
    newer += "2025-09,4,1,1,1,1\n"  # the by-rooms series are read but not used
    path = tmp_path / "newer.csv"
    path.write_text(newer.replace("2025-08,total,,,", "2025-08,total,236.0,61.8,"), "utf-8")
    index = Settings(price_index=path).index()
    assert index.last("sale") == index.last("rent") == "2025-09"
    assert index.source == str(path)


def test_the_setting_refuses_a_bad_index_file_at_start(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(table(["2019-01,total,100,1,100,1", "2019-03,total,1,1,1,1"]), "utf-8")
    with pytest.raises(ValueError, match="incomplete: the sale index"):
        Settings(price_index=path)


def test_as_of_outside_the_series_or_malformed_names_the_months_available() -> None:
    index = price_index.load()
    for bad in ("2030-01", "2019-4", "abril", "2007-12"):
        with pytest.raises(PriceIndexError, match="covers sale 2008-01 to 2025-08, rent 2008"):
            as_of.resolve(index, "2019-04", "sale", bad)
    # August 2025 exists for sales only: a rent asked for it is refused, a sale is not.
    with pytest.raises(PriceIndexError, match="outside the rent price index"):
        as_of.resolve(index, "2019-04", "rent", "2025-08")
    assert as_of.resolve(index, "2019-04", "sale", "2025-08").month == "2025-08"


def test_default_as_of_is_the_latest_month_of_the_negotiations_series() -> None:
    index = price_index.load()
    sale = as_of.resolve(index, "2019-04", "sale", None)
    rent = as_of.resolve(index, "2019-04", "rent", None)
    assert (sale.month, rent.month) == ("2025-08", "2025-07")
    assert sale.basis == (
        "valor de agosto de 2025, corrigido pelo Índice FipeZAP desde abril de 2019"
    )
    at_data = as_of.resolve(index, "2019-04", "sale", "2019-04")
    assert at_data.factor == 1.0


def test_a_valuation_moved_to_another_month_and_back_is_unchanged(valuer: Valuer) -> None:
    index = price_index.load()
    prop = valuer.prepare(
        {"negotiation": "rent", "district": valuer.builder.districts_[0], "size_m2": 80.0}
    )
    v = valuer.value(prop, explain=True, comparables=3)
    there = index.factor("rent", valuer.data_month, "2025-07")
    moved = as_of.move(v, there)
    assert moved.price == pytest.approx(v.price * there)
    # The range scales with the price: the same relative width in any month's money.
    assert moved.price_low == pytest.approx(v.price_low * there)  # type: ignore[operator]
    assert moved.price_high == pytest.approx(v.price_high * there)  # type: ignore[operator]
    assert moved.baseline == pytest.approx(v.baseline * there)  # type: ignore[operator]
    assert moved.price_m2 == pytest.approx(v.price_m2 * there)
    assert sum(r.effect_brl for r in moved.reasons or ()) == pytest.approx(
        moved.price - (moved.baseline or 0), rel=1e-6
    )
    assert [c.price for c in moved.comparables or ()] == pytest.approx(
        [c.price * there for c in v.comparables or ()]
    )
    back = as_of.move(moved, index.factor("rent", "2025-07", valuer.data_month))
    assert back.price == pytest.approx(v.price, rel=1e-12)
    assert back.price_low == pytest.approx(v.price_low, rel=1e-12)
    assert back.price_high == pytest.approx(v.price_high, rel=1e-12)
    assert back.property == v.property


def test_rendering_with_a_factor_is_rendering_the_moved_valuation_to_the_byte(
    valuer: Valuer,
) -> None:
    """``answer.valuation`` moves the amounts itself rather than copying the valuation: its
    answer is that of the moved valuation, byte for byte, whatever the options and fields."""
    import orjson

    from imovsp import answer

    district = valuer.builder.districts_[0]
    full = {
        "negotiation": "sale",
        "district": district,
        "size_m2": 130.0,
        "rooms": 4,
        "toilets": 5,
        "suites": 3,
        "parking": 1,
        "condo_fee": 1310.0,
        "elevator": True,
        "furnished": False,
        "swimming_pool": True,
        "new": False,
        "latitude": -23.491423,
        "longitude": -46.620248,
    }
    asks = [
        full,
        {"negotiation": "rent", "district": district, "size_m2": 80.0},
        {"negotiation": "sale", "district": district, "size_m2": 55.0, "rooms": 2},
    ]
    for fields in asks:
        prop = valuer.prepare(fields)
        for options in ({}, {"explain": True, "comparables": 3}, {"level": 0.9}):
            v = valuer.value(prop, **options)  # type: ignore[arg-type]
            for factor in (1.0, 1.320818129441137, 1.6098, 0.731):
                moved = answer.valuation(as_of.move(v, factor), request_id="r")
                assert orjson.dumps(answer.valuation(v, request_id="r", factor=factor)) == (
                    orjson.dumps(moved)
                ), (fields, options, factor)


def test_a_model_whose_month_the_index_does_not_cover_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "recent.csv"
    path.write_text(table(["2024-01,total,100,1,100,1", "2024-02,total,101,1,101,1"]), "utf-8")
    with pytest.raises(PriceIndexError, match="does not cover the model's data month 2019-04"):
        as_of.check_model(price_index.load(path), "2019-04")
