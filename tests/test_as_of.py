"""Valuations in the money of a chosen month (``as_of``) through the API, the command line and
batch scoring; and training on listings of several months brought to one by the index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from imovsp import data, price_index
from imovsp.api.legacy import ANSWER_KEY, EXAMPLE
from imovsp.api.schemas import BatchOut, ValuationOut
from imovsp.cli import cli
from imovsp.server import create_app
from imovsp.settings import Settings
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer

SALE = {"negotiation": "sale", "district": "Santana", "size_m2": 130, "rooms": 4}
RENT = {"negotiation": "rent", "district": "Pinheiros", "size_m2": 70}
INDEX = price_index.load()


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models_dir=models_dir))) as c:
        yield c


def valued(client: TestClient, body: dict[str, Any], query: str = "") -> ValuationOut:
    response = client.post(f"/v1/valuations{query}", json=body)
    assert response.status_code == 200, response.text
    return ValuationOut.model_validate(response.json())


# -- the API ----------------------------------------------------------------------------------


def test_valuation_defaults_to_the_latest_month_of_its_types_index(
    client: TestClient, valuer: Valuer
) -> None:
    sale, rent = valued(client, SALE), valued(client, RENT)
    assert (sale.as_of, rent.as_of) == ("2025-08", "2025-07")
    assert sale.data_month == rent.data_month == valuer.data_month == "2019-04"
    assert sale.index_factor == round(INDEX.factor("sale", "2019-04", "2025-08"), 6)
    assert rent.index_factor == round(INDEX.factor("rent", "2019-04", "2025-07"), 6)
    assert sale.index_basis == (
        "valor de agosto de 2025, corrigido pelo Índice FipeZAP desde abril de 2019"
    )
    assert sale.index_credit == "Índice FipeZAP (FIPE)"


def test_every_amount_of_a_valuation_follows_the_month_asked_for(client: TestClient) -> None:
    query = "?explain=true&comparables=4&level=0.9"
    base = valued(client, SALE, query + "&as_of=2019-04")
    moved = valued(client, SALE, query + "&as_of=2023-02")
    factor = INDEX.factor("sale", "2019-04", "2023-02")
    assert base.index_factor == 1.0
    assert base.price == base.price_at_data_month
    assert moved.as_of == "2023-02"
    assert moved.index_factor == round(factor, 6)
    assert moved.price_at_data_month == base.price
    # Sales are rounded to R$ 1,000: the moved figures are the unrounded ones times the factor.
    for key in ("price", "price_low", "price_high", "baseline"):
        assert getattr(moved, key) == pytest.approx(getattr(base, key) * factor, abs=1000)
    # Per m², rounded to the centavo.
    assert moved.price_m2 == pytest.approx(base.price_m2 * factor, abs=0.02)
    assert moved.district_median_price_m2 == pytest.approx(
        (base.district_median_price_m2 or 0) * factor, abs=0.02
    )
    for r_moved, r_base in zip(moved.reasons or [], base.reasons or [], strict=True):
        assert r_moved.effect_pct == r_base.effect_pct
        assert r_moved.effect_brl == pytest.approx(r_base.effect_brl * factor, rel=1e-9)
    assert moved.comparables
    assert base.comparables
    for c_moved, c_base in zip(moved.comparables, base.comparables, strict=True):
        assert c_moved.price == pytest.approx(c_base.price * factor, rel=1e-9)
        assert c_moved.price_at_data_month == c_base.price == c_base.price_at_data_month


@pytest.mark.parametrize("month", ["2030-01", "2007-12", "2019-4", "abril", "2019-13"])
def test_a_month_outside_the_series_or_malformed_is_a_422_naming_the_months(
    client: TestClient, month: str
) -> None:
    response = client.post(f"/v1/valuations?as_of={month}", json=SALE)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail.startswith("as_of: ")
    assert "the price index covers sale 2008-01 to 2025-08, rent 2008-01 to 2025-07" in detail


def test_a_month_only_the_sale_index_covers_is_refused_for_a_rent(client: TestClient) -> None:
    response = client.post("/v1/valuations?as_of=2025-08", json=RENT)
    assert response.status_code == 422
    assert "2025-08 is outside the rent price index" in response.json()["detail"]


def test_batch_values_each_type_in_the_month_and_errs_in_place_where_its_index_ends(
    client: TestClient,
) -> None:
    response = client.post("/v1/valuations/batch?as_of=2025-08", json={"items": [RENT, SALE]})
    assert response.status_code == 200, response.text
    body = BatchOut.model_validate(response.json())
    assert (body.valued, body.errors) == (1, 1)
    assert "2025-08 is outside the rent price index" in (body.items[0].error or "")
    assert body.items[1].valuation is not None
    assert body.items[1].valuation.as_of == "2025-08"
    one = valued(client, SALE, "?as_of=2025-08")
    assert body.items[1].valuation.price == one.price


def test_batch_with_a_month_no_series_covers_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/valuations/batch?as_of=2031-01", json={"items": [SALE]})
    assert response.status_code == 422
    assert "covers sale 2008-01 to 2025-08" in response.json()["detail"]


def test_old_endpoint_keeps_the_models_own_month(client: TestClient) -> None:
    old = client.post("/", json=EXAMPLE)
    assert old.status_code == 200, old.text
    new = valued(client, {"negotiation": "sale", "district": "Santana", "size_m2": 130, "rooms": 4})
    # EXAMPLE is this sale with every field given: its price is in the 2019 money only.
    assert old.json()[ANSWER_KEY] < new.price


def test_model_card_says_the_data_month_and_the_index_in_use(client: TestClient) -> None:
    card = client.get("/v1/model").json()
    assert card["data_month"] == "2019-04"
    assert card["price_index"]["series"] == "total"
    assert card["price_index"]["months"] == {
        "sale": ["2008-01", "2025-08"],
        "rent": ["2008-01", "2025-07"],
    }


def test_page_offers_the_months_of_the_index_and_names_the_models_month(
    client: TestClient,
) -> None:
    html = client.get("/").text
    assert 'id="as_of"' in html
    assert "anúncios de abril de 2019" in html
    assert '["2025-08", "agosto de 2025"]' in html  # the months the page offers, for sales


def test_a_service_given_an_index_that_misses_the_models_month_refuses_to_start(
    models_dir: Path, tmp_path: Path
) -> None:
    path = tmp_path / "recent.csv"
    path.write_text(
        "month,rooms,rent_index,rent_price_m2,sale_index,sale_price_m2\n"
        "2024-01,total,100,1,100,1\n2024-02,total,101,1,101,1\n",
        encoding="utf-8",
    )
    app = create_app(Settings(models_dir=models_dir, price_index=path))
    with pytest.raises(ValueError, match="does not cover the model's data month 2019-04"):  # noqa: SIM117
        with TestClient(app):
            pass


# -- the command line -------------------------------------------------------------------------


@pytest.fixture
def runner(env: None) -> CliRunner:
    return CliRunner()


def test_predict_as_of_moves_the_price_and_says_so(runner: CliRunner) -> None:
    args = ["predict", "--negotiation", "sale", "--district", "Santana", "--size", "130", "--json"]
    base = json.loads(runner.invoke(cli, [*args, "--as-of", "2019-04"]).output)
    moved = runner.invoke(cli, [*args, "--as-of", "2024-06"])
    assert moved.exit_code == 0, moved.output
    found = json.loads(moved.output)
    factor = INDEX.factor("sale", "2019-04", "2024-06")
    assert (found["as_of"], found["index_factor"]) == ("2024-06", round(factor, 6))
    assert found["price_at_data_month"] == base["price"]
    assert found["price"] == pytest.approx(base["price"] * factor, abs=1000)
    text = runner.invoke(cli, args[:-1])
    assert text.exit_code == 0, text.output
    assert "in the money of 2025-08: the model's 2019-04 figures × 1.3208" in text.output


@pytest.mark.parametrize("month", ["2031-02", "2019/04"])
def test_predict_with_a_month_outside_the_index_exits_2_naming_the_months(
    runner: CliRunner, month: str
) -> None:
    result = runner.invoke(
        cli,
        [
            *("predict", "--negotiation", "rent", "--district", "Pinheiros", "--size", "70"),
            *("--as-of", month),
        ],
    )
    assert result.exit_code == 2, result.output
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: as_of: ")
    assert "covers sale 2008-01 to 2025-08, rent 2008-01 to 2025-07" in last


def test_score_writes_as_of_and_index_factor_and_scales_the_prices(
    runner: CliRunner, tmp_path: Path
) -> None:
    rows = synthetic_listings(40, seed=11).drop(columns=["Price"])
    source = tmp_path / "in.csv"
    rows.to_csv(source, index=False)
    outputs = {}
    for month in ("2019-04", "2022-10"):
        target = tmp_path / f"out-{month}.csv"
        result = runner.invoke(cli, ["score", str(source), "-o", str(target), "--as-of", month])
        assert result.exit_code == 0, result.output
        outputs[month] = pd.read_csv(target, keep_default_na=False)
    base, moved = outputs["2019-04"], outputs["2022-10"]
    assert (base["error"] == "").all()
    assert (moved["error"] == "").all()
    assert set(base["as_of"]) == {"2019-04"}
    assert set(base["index_factor"]) == {1.0}
    assert set(moved["as_of"]) == {"2022-10"}
    factor = np.where(
        moved["Negotiation Type"] == "sale",
        INDEX.factor("sale", "2019-04", "2022-10"),
        INDEX.factor("rent", "2019-04", "2022-10"),
    )
    assert moved["index_factor"].to_numpy() == pytest.approx(factor, abs=1e-6)
    for column in ("predicted_price", "price_low", "price_high"):
        # Each rounded to R$ 1: the base figure moved is off by half a real times the factor.
        assert moved[column].to_numpy() == pytest.approx(base[column] * factor, abs=1.5)


def test_score_with_a_month_only_sales_have_gives_rent_rows_an_error(
    runner: CliRunner, tmp_path: Path
) -> None:
    rows = synthetic_listings(30, seed=12).drop(columns=["Price"])
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    rows.to_csv(source, index=False)
    result = runner.invoke(cli, ["score", str(source), "-o", str(target), "--as-of", "2025-08"])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(target, keep_default_na=False)
    rent = out["Negotiation Type"] == "rent"
    assert rent.any()
    assert (~rent).any()
    assert out.loc[rent, "error"].str.contains("outside the rent price index").all()
    assert (out.loc[~rent, "error"] == "").all()
    assert (out.loc[~rent, "as_of"] == "2025-08").all()


def test_score_with_a_malformed_month_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    synthetic_listings(5, seed=1).to_csv(source, index=False)
    result = runner.invoke(cli, ["score", str(source), "--as-of", "2025"])
    assert result.exit_code == 2, result.output
    assert "'2025' is not a month" in result.output.strip().splitlines()[-1]


def test_index_command_shows_the_series_and_months_in_use(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["index"])
    assert result.exit_code == 0, result.output
    assert "Índice FipeZAP (FIPE), São Paulo, series 'total'" in result.output
    assert "sale  2008-01 to 2025-08 (212 months); × 1.3208 from the model's 2019-04" in (
        result.output
    )
    assert "rent  2008-01 to 2025-07 (211 months)" in result.output


def test_a_bad_index_file_setting_stops_every_command_with_one_line(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imovsp.settings import get_settings

    path = tmp_path / "index.csv"
    path.write_text("month,rooms,sale_index,rent_index\n2019-01,total,1,x\n", encoding="utf-8")
    monkeypatch.setenv("IMOVSP_PRICE_INDEX", str(path))
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli, ["index"])
    finally:
        monkeypatch.delenv("IMOVSP_PRICE_INDEX")
        get_settings.cache_clear()
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [
        "Error: bad setting in the environment: IMOVSP_PRICE_INDEX: Value error, "
        f"{path} line 2: "
        "rent_index is not a number: 'x'"
    ]


# -- training on listings of several months ---------------------------------------------------

MONTHS = [f"{y}-{m:02d}" for y in (2019, 2020) for m in range(1, 13)]


def synthetic_index(path: Path) -> price_index.PriceIndex:
    """Sales up 1% and rents up 2% a month from January 2019."""
    lines = ["month,rooms,rent_index,rent_price_m2,sale_index,sale_price_m2"]
    for i, month in enumerate(MONTHS):
        lines.append(f"{month},total,{100 * 1.02**i!r},1,{100 * 1.01**i!r},1")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return price_index.load(path)


def dated_files(tmp_path: Path, index: price_index.PriceIndex) -> tuple[pd.DataFrame, list[Path]]:
    """The same listings as priced in 2020-06, split into a file of 2019-04 listings without
    a Month column and one whose rows carry months of 2019 and 2020; each listing's price
    follows the index from 2020-06 to its month."""
    # As many as the session's model is trained on: fewer leave some district out of a split.
    listings = synthetic_listings(2500, seed=7)
    rng = np.random.default_rng(5)
    months = np.where(np.arange(len(listings)) < 800, "2019-04", rng.choice(MONTHS, len(listings)))
    factors = [
        index.factor(n, "2020-06", m)
        for n, m in zip(listings["Negotiation Type"], months, strict=True)
    ]
    dated = listings.assign(Price=listings["Price"] * np.array(factors), Month=months)
    first, second = tmp_path / "2019.csv", tmp_path / "recent.csv"
    dated.iloc[:800].drop(columns=["Month"]).to_csv(first, index=False, float_format="%.10f")
    dated.iloc[800:].to_csv(second, index=False, float_format="%.10f")
    return listings, [first, second]


def test_listings_of_many_months_are_brought_back_to_one_months_money(tmp_path: Path) -> None:
    index = synthetic_index(tmp_path / "index.csv")
    listings, files = dated_files(tmp_path, index)
    frame, report = data.load_dated_listings(
        files, default_month="2019-04", index=index, base_month="2020-06"
    )
    original, _ = data.load_dated_listings(
        [_write(listings, tmp_path / "all.csv")], default_month="2020-06", index=index
    )
    assert report.base_month == "2020-06"
    assert sum(report.months.values()) == len(frame) == len(original)
    assert report.months["2019-04"] >= 700  # (less the exact duplicates)
    pd.testing.assert_frame_equal(frame, original, check_exact=False, rtol=1e-9)
    assert "prices brought to 2020-06 by the price index" in report.summary()


def test_base_month_defaults_to_the_latest_listing_month(tmp_path: Path) -> None:
    index = synthetic_index(tmp_path / "index.csv")
    _, files = dated_files(tmp_path, index)
    _, report = data.load_dated_listings(files, default_month="2019-04", index=index)
    assert report.base_month == max(report.months) == "2020-12"


def test_rows_with_a_bad_month_or_one_outside_the_index_are_rejected_with_the_reason(
    tmp_path: Path,
) -> None:
    index = synthetic_index(tmp_path / "index.csv")
    rows = synthetic_listings(12, seed=2).assign(Month="2020-01")
    rows.loc[0, "Month"] = "2020-1"
    rows.loc[1, "Month"] = "2024-01"
    rows.loc[2, "Month"] = ""  # takes the file's default month
    negotiation = rows.loc[1, "Negotiation Type"]
    frame, report = data.load_dated_listings(
        [_write(rows, tmp_path / "rows.csv")], default_month="2019-04", index=index
    )
    assert report.rejected["Month is not YYYY-MM"] == 1
    assert report.rejected[f"Month 2024-01 is outside the {negotiation} price index"] == 1
    assert report.months == {"2019-04": 1, "2020-01": len(frame) - 1}


def test_train_on_two_files_of_several_months_records_the_base_month(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: None
) -> None:
    from imovsp.settings import get_settings

    index_path = tmp_path / "index.csv"
    index = synthetic_index(index_path)
    _, files = dated_files(tmp_path, index)
    monkeypatch.setenv("IMOVSP_PRICE_INDEX", str(index_path))
    get_settings.cache_clear()
    out = tmp_path / "models"
    args = ["train", "--out", str(out), "--no-seed-comparison", "--base-month", "2020-06"]
    result = CliRunner().invoke(cli, [*args, "--data", str(files[0]), "--data", str(files[1])])
    assert result.exit_code == 0, result.output
    assert "prices in the money of 2020-06 (the model's data month)" in result.output
    version = (out / "CURRENT").read_text().strip()
    meta = json.loads((out / version / "metadata.json").read_text())
    assert meta["data"]["month"] == "2020-06"
    assert meta["data"]["source"] == f"{files[0]}, {files[1]}"
    assert meta["data"]["price_index"]["source"] == str(index_path)
    assert meta["data"]["report"]["base_month"] == "2020-06"
    listed = CliRunner().invoke(cli, ["models", "--models-dir", str(out)])
    assert listed.output.splitlines()[1].rstrip().endswith("2020-06")
    # Its valuations start from its own month: a factor of 1 there, the index's after.
    valued = Valuer.load(out / version)
    assert valued.data_month == "2020-06"
    get_settings.cache_clear()


def _write(frame: pd.DataFrame, path: Path) -> Path:
    frame.to_csv(path, index=False, float_format="%.10f")
    return path
