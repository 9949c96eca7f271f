"""The imovsp command line: each command works, and each user mistake is one line and exit 2."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from imovsp.cli import cli, valuation_lines
from imovsp.features import Property
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Reason, Valuer

pytestmark = pytest.mark.usefixtures("env")


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def assert_user_error(result, message: str) -> None:  # type: ignore[no-untyped-def]
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    # The error is one line, the last one (progress lines may come before it).
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("Error: "), result.output
    assert message in last


def test_train_writes_a_new_current_version_its_report_and_prints_both_models(
    runner: CliRunner, listings_csv: Path, tmp_path: Path
) -> None:
    result = runner.invoke(
        cli, ["train", "--data", str(listings_csv), "--out", str(tmp_path), "--seed", "5"]
    )
    assert result.exit_code == 0, result.output
    assert "imovsp     sale" in result.output
    assert "seed       rent" in result.output
    assert "tuning the sale model" in result.output  # progress on the long steps
    (version,) = [p.name for p in tmp_path.iterdir() if p.is_dir()]
    assert (tmp_path / "CURRENT").read_text().strip() == version
    assert "price ranges on the test split" in result.output
    # The HTML report beside the model, with its charts embedded so it opens offline.
    text = (tmp_path / version / "report.html").read_text()
    for heading in ("seed approach", "Predicted against actual", "coverage", "Error by district"):
        assert heading in text
    assert text.count("data:image/png;base64,") == 4  # accuracy, scatter, coverage, district


def test_train_missing_columns_exits_2_naming_them(runner: CliRunner, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    synthetic_listings(20).drop(columns=["Condo"]).to_csv(bad, index=False)
    result = runner.invoke(cli, ["train", "--data", str(bad), "--out", str(tmp_path / "m")])
    assert_user_error(result, "missing required column(s): Condo")


def test_train_missing_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(cli, ["train", "--data", str(tmp_path / "nope.csv")])
    assert_user_error(result, "listings file not found")


def test_score_keeps_every_row_in_order_with_errors(runner: CliRunner, tmp_path: Path) -> None:
    rows = synthetic_listings(30, seed=31).astype(str)
    rows.loc[4, "Size"] = "-10"
    rows.loc[7, "District"] = "Atlantis/São Paulo"
    rows.loc[9, "Negotiation Type"] = "swap"
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    rows.to_csv(source, index=False)
    result = runner.invoke(cli, ["score", str(source), "-o", str(target)])
    assert result.exit_code == 0, result.output
    out = pd.read_csv(target, dtype=str, keep_default_na=False)
    assert list(out.columns) == [
        *rows.columns,
        "predicted_price",
        "price_low",
        "price_high",
        "not_given",
        "error",
        "as_of",
        "index_factor",
    ]
    pd.testing.assert_frame_equal(out[rows.columns], rows)
    assert out.loc[4, "error"] == "Size must be > 0"
    assert out.loc[7, "error"] == "unknown district 'Atlantis'"
    assert out.loc[9, "error"] == "Negotiation Type must be sale or rent"
    bad = [4, 7, 9]
    for column in ("predicted_price", "price_low", "price_high"):
        assert (out.loc[bad, column] == "").all()
    good = out.drop(index=bad)
    assert (good["error"] == "").all()
    assert (good["predicted_price"].astype(float) > 0).all()
    assert (good["price_low"].astype(float) <= good["predicted_price"].astype(float)).all()
    assert (good["price_high"].astype(float) >= good["predicted_price"].astype(float)).all()
    assert "scored 27 of 30 rows (3 with errors)" in result.output


def test_score_ignores_price_and_accepts_files_without_it(
    runner: CliRunner, tmp_path: Path
) -> None:
    rows = synthetic_listings(10, seed=32)
    with_price, without = tmp_path / "a.csv", tmp_path / "b.csv"
    rows.to_csv(with_price, index=False)
    rows.assign(Price=1).drop(columns=["Price"]).to_csv(without, index=False)
    for source in (with_price, without):
        assert runner.invoke(cli, ["score", str(source), "-o", str(source) + ".out"]).exit_code == 0
    a = pd.read_csv(str(with_price) + ".out")
    b = pd.read_csv(str(without) + ".out")
    assert list(a["predicted_price"]) == list(b["predicted_price"])


def test_score_missing_columns_exits_2_and_writes_nothing(
    runner: CliRunner, tmp_path: Path
) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    synthetic_listings(10).drop(columns=["Size"]).to_csv(source, index=False)
    result = runner.invoke(cli, ["score", str(source), "-o", str(target)])
    assert_user_error(result, "missing required column(s): Size")
    assert list(tmp_path.iterdir()) == [source]


def test_score_missing_input_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    assert_user_error(
        runner.invoke(cli, ["score", str(tmp_path / "x.csv")]), "input file not found"
    )


def test_score_without_a_model_trains_one_first_and_says_so(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listings_csv: Path
) -> None:
    from imovsp.settings import get_settings

    monkeypatch.setenv("IMOVSP_MODELS_DIR", str(tmp_path / "empty"))
    get_settings.cache_clear()
    source = tmp_path / "in.csv"
    synthetic_listings(5, seed=33).to_csv(source, index=False)
    result = runner.invoke(cli, ["score", str(source), "-o", str(tmp_path / "out.csv")])
    assert result.exit_code == 0, result.output
    assert "training one from" in result.output
    assert (tmp_path / "empty" / "CURRENT").is_file()


def test_corrupt_model_exits_2_with_the_reason(
    runner: CliRunner, tmp_path: Path, valuer: Valuer
) -> None:
    import shutil

    assert valuer.path is not None
    broken = tmp_path / valuer.version
    shutil.copytree(valuer.path, broken)
    (broken / "model-rent.txt.gz").write_text("garbage")
    source = tmp_path / "in.csv"
    synthetic_listings(5).to_csv(source, index=False)
    result = runner.invoke(cli, ["score", str(source), "--model", str(broken)])
    assert_user_error(result, "model-rent.txt.gz does not match its checksum")


def test_evaluate_reports_metrics_per_negotiation(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "labelled.csv"
    synthetic_listings(400, seed=34).to_csv(source, index=False)
    result = runner.invoke(cli, ["evaluate", "--data", str(source), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output[result.output.index("{") :])["metrics"]
    assert set(metrics) == {"sale", "rent"}
    assert 0 < metrics["sale"]["mape"] < 40
    ranges = json.loads(result.output[result.output.index("{") :])["ranges"]
    assert set(ranges) == {"sale", "rent"}
    for per_level in ranges.values():
        assert list(per_level) == ["0.50", "0.60", "0.70", "0.80", "0.90", "0.95"]
        widths = [m["median_width"] for m in per_level.values()]
        assert widths == sorted(widths)
        assert widths[0] > 0
        assert 60 <= per_level["0.80"]["coverage"] <= 95


def test_evaluate_prints_range_coverage_and_writes_a_report(
    runner: CliRunner, tmp_path: Path
) -> None:
    source, page = tmp_path / "labelled.csv", tmp_path / "report.html"
    synthetic_listings(300, seed=35).to_csv(source, index=False)
    result = runner.invoke(cli, ["evaluate", "--data", str(source), "--report", str(page)])
    assert result.exit_code == 0, result.output
    assert "covered%" in result.output
    assert re.search(r"^sale +80 +[0-9.]+ +[0-9.]+$", result.output, re.MULTILINE)
    text = page.read_text()
    assert text.count('src="data:image/png;base64,') >= 4  # charts embedded: opens offline
    assert "http://" not in text
    assert "https://" not in text
    assert "largest errors" in text


def test_score_level_changes_the_range_and_is_bounded(runner: CliRunner, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    synthetic_listings(20, seed=36).to_csv(source, index=False)
    widths = []
    for level in ("0.5", "0.95"):
        target = tmp_path / f"out-{level}.csv"
        result = runner.invoke(cli, ["score", str(source), "-o", str(target), "--level", level])
        assert result.exit_code == 0, result.output
        out = pd.read_csv(target)
        widths.append(out["price_high"] - out["price_low"])
    assert (widths[1] >= widths[0]).all()
    assert (widths[1] > widths[0]).any()
    result = runner.invoke(cli, ["score", str(source), "--level", "0.99"])
    assert result.exit_code == 2
    assert "0.99 is not in the range 0.5<=x<=0.95" in result.output


def test_models_lists_versions_and_marks_the_current(runner: CliRunner, valuer: Valuer) -> None:
    result = runner.invoke(cli, ["models"])
    assert result.exit_code == 0, result.output
    assert f"* {valuer.version}" in result.output


def test_predict_prints_a_readable_line(runner: CliRunner) -> None:
    result = runner.invoke(
        cli,
        [
            "predict",
            "--negotiation",
            "sale",
            "--district",
            "santana",
            "--size",
            "130",
            "--rooms",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith("Santana, 130 m², sale: R$ ")
    assert "(80% range R$ " in result.output
    assert "per m²; Santana median R$ " in result.output
    assert "not given, priced as unknown: toilets" in result.output
    # Which fields would narrow the range is the data's to say (test_partial checks the choice);
    # each hint the command gives is a "give ...: ±x% instead of ±y%" line.
    hints = [line for line in result.output.splitlines() if line.startswith("give ")]
    assert all(" instead of ±" in line for line in hints)


def test_predict_json_from_file(runner: CliRunner, tmp_path: Path) -> None:
    body = tmp_path / "p.json"
    body.write_text(
        json.dumps(
            {
                "negotiation": "rent",
                "district": "Moema",
                "size_m2": 70,
                "rooms": 2,
                "toilets": 2,
                "suites": 1,
                "parking": 1,
                "condo_fee": 600,
                "elevator": True,
                "furnished": False,
                "swimming_pool": True,
                "new": False,
            }
        )
    )
    result = runner.invoke(cli, ["predict", "--file", str(body), "--json"])
    assert result.exit_code == 0, result.output
    answer = json.loads(result.output.strip().splitlines()[-1])
    assert answer["district"] == "Moema"
    assert answer["negotiation"] == "rent"
    assert answer["not_given"] == ["location"]  # the file gives every field but coordinates
    for hint in answer["sharpen"]:  # at most the one group not given: the coordinates
        assert hint["fields"] == ["location"]
        assert hint["width_pct"] < answer["width_pct"]
    assert 500 < answer["price"] < 50_000
    # BRL per m² to the centavo, as the API gives them.
    for key in ("price_m2", "district_median_price_m2"):
        assert answer[key] > 0
        assert answer[key] == round(answer[key], 2)


def test_predict_json_is_the_apis_answer(runner: CliRunner, models_dir: Path) -> None:
    # One answer, built once (imovsp.answer): the same keys, roundings and nulls.
    from fastapi.testclient import TestClient

    from imovsp.server import create_app
    from imovsp.settings import Settings

    args = ["--negotiation", "rent", "--district", "Pinheiros", "--size", "70", "--rooms", "2"]
    result = runner.invoke(cli, ["predict", *args, "--explain", "--comparables", "2", "--json"])
    assert result.exit_code == 0, result.output
    body = {"negotiation": "rent", "district": "Pinheiros", "size_m2": 70, "rooms": 2}
    with TestClient(create_app(Settings(models_dir=models_dir))) as client:
        response = client.post("/v1/valuations?explain=true&comparables=2", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    del answer["request_id"]
    assert json.loads(result.output) == answer
    assert answer["price_low"] is not None
    assert answer["reasons"]


def test_predict_unknown_district_exits_2_with_suggestions(runner: CliRunner) -> None:
    result = runner.invoke(
        cli, ["predict", "--negotiation", "sale", "--district", "Moemma", "--size", "80"]
    )
    assert_user_error(result, "unknown district 'Moemma'; closest known: Moema")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--district", "Moema", "--size", "80"], "missing negotiation"),
        (["--negotiation", "sale", "--size", "80"], "missing district"),
        (["--negotiation", "sale", "--district", "Moema", "--size", "0"], "10<=x<=2000"),
        (["--negotiation", "lease", "--district", "Moema", "--size", "80"], "'lease' is not one"),
    ],
)
def test_predict_bad_options_exit_2(runner: CliRunner, args: list[str], message: str) -> None:
    assert_user_error(runner.invoke(cli, ["predict", *args]), message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["predict", "--level", "0.99"], "0.99 is not in the range 0.5<=x<=0.95"),
        (["score"], "Missing argument 'SOURCE'"),
        (["valuate"], "No such command 'valuate'"),
        (["db", "prune"], "Missing option '--older-than'"),
        (["db", "vacuum"], "No such command 'vacuum'"),
    ],
)
def test_usage_errors_are_one_line_with_the_help_to_read(
    runner: CliRunner, args: list[str], message: str
) -> None:
    # click prints the usage and a hint on lines of their own; here they are one line.
    result = runner.invoke(cli, args, prog_name="imovsp")
    assert_user_error(result, message)
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert result.output.strip().endswith("--help')")


def test_predict_bad_json_file_exits_2(runner: CliRunner, tmp_path: Path) -> None:
    body = tmp_path / "p.json"
    body.write_text("{nope")
    assert_user_error(runner.invoke(cli, ["predict", "--file", str(body)]), "is not valid JSON")
    body.write_text(
        json.dumps({"negotiation": "sale", "district": "Moema", "size_m2": 80, "sauna": True})
    )
    assert_user_error(
        runner.invoke(cli, ["predict", "--file", str(body)]), "unknown field(s): sauna"
    )
    body.write_text(json.dumps({"negotiation": "sale", "district": "Moema", "size_m2": "big"}))
    result = runner.invoke(cli, ["predict", "--file", str(body)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_predict_without_any_model_exits_2(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from imovsp.settings import get_settings

    monkeypatch.setenv("IMOVSP_MODELS_DIR", str(tmp_path))
    get_settings.cache_clear()
    result = runner.invoke(
        cli, ["predict", "--negotiation", "sale", "--district", "Moema", "--size", "80"]
    )
    assert_user_error(result, "no model in")


def test_predict_explains_and_lists_comparables(runner: CliRunner) -> None:
    args = ["predict", "--negotiation", "rent", "--district", "Pinheiros", "--size", "70"]
    result = runner.invoke(cli, [*args, "--explain", "--comparables", "3", "--level", "0.9"])
    assert result.exit_code == 0, result.output
    assert "(90% range R$ " in result.output
    assert "why, from a typical apartment at R$ " in result.output
    assert "  location " in result.output
    assert "3 comparable listings:" in result.output
    as_json = runner.invoke(cli, [*args, "--explain", "--comparables", "3", "--json"])
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(as_json.output[as_json.output.index("{") :])
    assert body["level"] == 0.8
    assert body["price_low"] <= body["price"] <= body["price_high"]
    assert len(body["comparables"]) == 3
    assert {"price", "price_m2", "distance_km", "district", "size_m2"} <= set(
        body["comparables"][0]
    )
    assert "location" in [r["feature"] for r in body["reasons"]]
    assert body["district_median_price_m2"] > 0


@pytest.mark.parametrize("fee", ["5e-324", "0.5", "1e308", "-5"])
def test_predict_a_condo_fee_that_is_no_price_exits_2_saying_the_range(
    runner: CliRunner, tmp_path: Path, fee: str
) -> None:
    args = ["predict", "--negotiation", "rent", "--district", "Pinheiros", "--size", "70"]
    result = runner.invoke(cli, [*args, "--condo-fee", fee])
    assert_user_error(result, "is not 0 (unknown) or a monthly fee from 1 to 100,000")
    body = tmp_path / "p.json"
    body.write_text(
        f'{{"negotiation": "rent", "district": "Pinheiros", "size_m2": 70, "condo_fee": {fee}}}'
    )
    result = runner.invoke(cli, ["predict", "--file", str(body)])
    assert_user_error(result, "condo_fee: ")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("size_m2", 5000, "size_m2: 5000.0 is not in the range 10<=x<=2000"),
        ("rooms", 25, "rooms: 25 is not in the range 0<=x<=20"),
        ("latitude", -123.5, "latitude: -123.5 is not in the range -90<=x<=90"),
    ],
)
def test_predict_from_a_file_holds_its_numbers_to_the_apis_bounds(
    runner: CliRunner, tmp_path: Path, field: str, value: float, message: str
) -> None:
    body = {"negotiation": "sale", "district": "Moema", "size_m2": 80, field: value}
    if field == "latitude":
        body["longitude"] = -46.66
    path = tmp_path / "p.json"
    path.write_text(json.dumps(body))
    assert_user_error(runner.invoke(cli, ["predict", "--file", str(path)]), message)


def test_predict_too_many_comparables_exits_2(runner: CliRunner) -> None:
    args = ["predict", "--negotiation", "rent", "--district", "Pinheiros", "--size", "70"]
    result = runner.invoke(cli, [*args, "--comparables", "21"])
    assert result.exit_code == 2
    assert "21 is not in the range 0<=x<=20" in result.output


def test_readable_lines_say_one_room_and_no_negative_zero(valuer: Valuer) -> None:
    found = valuer.value(Property("sale", "Moema", 80, 2, 2, 1, 1), explain=True, comparables=1)
    assert found.reasons is not None
    assert found.comparables is not None
    tiny = Reason("elevator", "no", -0.04, -0.3)  # rounds to nothing
    one = dataclasses.replace(found.comparables[0], rooms=1, suites=1)
    lines = valuation_lines(
        dataclasses.replace(found, reasons=(*found.reasons, tiny), comparables=(one,))
    )
    assert any(re.search(r"elevator +no +\+0\.0%  R\$ \+0$", line) for line in lines), lines
    assert "-0" not in "".join(line for line in lines if line.strip().startswith("elevator"))
    assert any(", 1 room, 1 suite, " in line for line in lines), lines


def test_the_cli_copies_of_the_core_constants_still_match_them() -> None:
    # The CLI copies them so that it starts without importing the core (see imovsp.cli).
    from imovsp import batch, cli, formats

    assert cli.FORMATS == formats.FORMATS
    assert cli.CHUNK_ROWS == batch.CHUNK_ROWS


def test_the_cli_starts_without_the_scientific_stack() -> None:
    # --help, `models` and `db` answer in well under a second (benchmarks/cli.py): importing
    # the CLI must not import what only valuing needs.
    code = (
        "import sys, imovsp.cli; "
        "print(sorted(m for m in ('pandas', 'lightgbm', 'sklearn', 'scipy', 'matplotlib', "
        "'sqlalchemy', 'fastapi') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
