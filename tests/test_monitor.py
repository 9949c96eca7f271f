"""``imovsp monitor``: traffic like the training data passes; a drifted input mix, or live error
worse than the model card's, is flagged with exit code 1; user mistakes are exit code 2."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from imovsp import data, drift
from imovsp.cli import cli
from imovsp.features import frame_columns
from imovsp.monitoring.recorder import row
from imovsp.monitoring.store import Store, head
from imovsp.server import create_app
from imovsp.settings import get_settings
from imovsp.synthetic import synthetic_listings
from imovsp.valuer import Valuer
from test_prediction_log import postgres_url, settings_for

pytestmark = pytest.mark.usefixtures("env")
TRAFFIC = 500  # valuations of each run, both negotiation types together
FEEDBACK = 80  # of them with a real price, per negotiation type


def items(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Validated listings as API request items (every field given; 0 coordinates: none)."""
    cols = frame_columns(frame)
    out = []
    for i in range(len(frame)):
        lat, lon = cols["latitude"][i], cols["longitude"][i]
        item: dict[str, Any] = {
            "negotiation": cols["negotiation"][i],
            "district": cols["district"][i],
            "size_m2": float(cols["size_m2"][i]),
            **{k: int(cols[k][i]) for k in ("rooms", "toilets", "suites", "parking")},
            "condo_fee": float(cols["condo_fee"][i]),
            **{k: bool(cols[k][i]) for k in ("elevator", "furnished", "swimming_pool", "new")},
        }
        if np.isfinite(lat) and np.isfinite(lon):
            item |= {"latitude": float(lat), "longitude": float(lon)}
        out.append(item)
    return out


def fresh_listings(seed: int) -> pd.DataFrame:
    """New listings from the generator the model was trained on (other random draws)."""
    frame = data.validate(synthetic_listings(TRAFFIC, seed=seed)).frame
    return frame.reset_index(drop=True)


def drifted(frame: pd.DataFrame, valuer: Valuer) -> list[dict[str, Any]]:
    """The same requests moved away from the training data: bigger flats, all in the five
    dearest districts, none with coordinates."""
    dear = valuer.builder.district_price_m2_[:, 0]
    top = [valuer.builder.districts_[i] for i in np.argsort(-np.nan_to_num(dear))[:5]]
    out = []
    for i, item in enumerate(items(frame)):
        item = {k: v for k, v in item.items() if k not in ("latitude", "longitude")}
        out.append({**item, "size_m2": min(item["size_m2"] * 2.5, 2000), "district": top[i % 5]})
    return out


def serve_traffic(
    url: str,
    models_dir: Path,
    requests: list[dict[str, Any]],
    actual: Callable[[int, dict[str, Any]], float],
) -> None:
    """Value ``requests`` through the API, then send feedback for the first ``FEEDBACK`` of
    each type: real price ``actual(i, the valuation answered)`` (kind ``listed``)."""
    with TestClient(create_app(settings_for(models_dir, url))) as client:
        response = client.post("/v1/valuations/batch", json={"items": requests})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["errors"] == 0, body
        sent = dict.fromkeys(data.NEGOTIATIONS, 0)
        for i, item in enumerate(requests):
            if sent[item["negotiation"]] >= FEEDBACK:
                continue
            sent[item["negotiation"]] += 1
            price = actual(i, body["items"][i]["valuation"])
            answer = {"request_id": body["request_id"], "index": i, "kind": "listed"}
            reply = client.post("/v1/feedback", json={**answer, "actual_price": price})
            assert reply.status_code == 201, reply.text


def empty_database(url: str) -> str:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS feedback, valuations, alembic_version"))
    engine.dispose()
    return url


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def calm_log(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> str:
    """A log of traffic like the training data, with feedback at the listings' prices (in the
    model's month, so brought to the answers' month as a client would report them)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('calm') / 'log.db'}"
    else:
        url = empty_database(postgres_url())
    frame = fresh_listings(seed=101)
    prices = frame[data.PRICE].tolist()
    serve_traffic(url, models_dir, items(frame), lambda i, v: prices[i] * v["index_factor"])
    return url


@pytest.fixture(scope="module")
def drifted_log(tmp_path_factory: pytest.TempPathFactory, models_dir: Path, valuer: Valuer) -> str:
    """A log of drifted traffic, with real prices twice what the model said."""
    url = f"sqlite:///{tmp_path_factory.mktemp('drifted') / 'log.db'}"
    requests = drifted(fresh_listings(seed=202), valuer)
    serve_traffic(url, models_dir, requests, lambda _, v: 2 * v["price"])
    return url


@pytest.fixture
def monitor(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def run(url: str, *args: str, **settings: str) -> Result:
        monkeypatch.setenv("IMOVSP_DATABASE_URL", url)
        for name, value in settings.items():
            monkeypatch.setenv(f"IMOVSP_{name.upper()}", value)
        get_settings.cache_clear()
        return CliRunner().invoke(cli, ["monitor", *args])

    yield run
    get_settings.cache_clear()


def summary_of(result: Result) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(result.stdout)
    return found


def test_traffic_like_the_training_data_passes(monitor: Any, calm_log: str, valuer: Valuer) -> None:
    result = monitor(calm_log, "--since", "1h", "--json")
    assert result.exit_code == 0, result.output
    summary = summary_of(result)
    assert summary["status"] == "ok"
    assert summary["alerts"] == []
    assert summary["model_version"] == valuer.version
    assert summary["by_source"] == {"batch": summary["valuations"]}
    assert summary["valuations"] > 0.9 * TRAFFIC
    for n in data.NEGOTIATIONS:
        found = summary["drift"][n]
        assert found["judged"]
        for name, v in found["variables"].items():
            assert v["psi"] is not None, name
            assert v["psi"] < 0.15, (n, name, v)
        error = summary["error"][n]
        assert error["feedback"] == FEEDBACK
        card = valuer.metadata["metrics"]["test"]["imovsp"][n]["mape"]
        assert error["card"]["mape"] == card
        assert 0.5 * card < error["mape"] < 1.5 * card, error
        assert error["coverage"] > error["nominal_coverage"] - 10


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_live_error_is_in_the_money_the_answers_were_shown_in(
    monitor: Any, models_dir: Path, tmp_path: Path, backend: str
) -> None:
    """Feedback at exactly the prices shown (today's money, not the model's month): no error."""
    url = f"sqlite:///{tmp_path / 'log.db'}" if backend == "sqlite" else postgres_url()
    if backend == "postgresql":
        empty_database(url)
    requests = items(fresh_listings(seed=303))[:60]
    assert {r["negotiation"] for r in requests} == set(data.NEGOTIATIONS)
    serve_traffic(url, models_dir, requests, lambda _, v: v["price"])
    result = monitor(url, "--json")
    assert result.exit_code in (0, 1), result.output
    summary = summary_of(result)
    for n in data.NEGOTIATIONS:
        error = summary["error"][n]
        assert error["feedback"] == sum(r["negotiation"] == n for r in requests)
        # Only the answers' rounding (to R$ 1,000 or R$ 10) is left.
        assert error["mape"] < 0.5, error
        assert error["median_ape"] < 0.5, error
        assert error["coverage"] == 100.0, error
    text = monitor(url).stdout
    assert f"{data.NEGOTIATIONS[0]} live error (" in text
    assert "feedback, in the money shown): MAPE" in text


def test_a_drifted_input_mix_and_worse_live_error_are_flagged(
    monitor: Any, drifted_log: str
) -> None:
    result = monitor(drifted_log, "--json")
    assert result.exit_code == 1, result.output
    summary = summary_of(result)
    assert summary["status"] == "alert"
    alerts = "\n".join(summary["alerts"])
    for n in data.NEGOTIATIONS:
        variables = summary["drift"][n]["variables"]
        for name in ("size_m2", "district_tier", "location_estimated", "predicted_price"):
            assert variables[name]["alert"], (n, name, variables[name])
            assert f"{n}: {name} PSI" in alerts
        assert variables["rooms"]["alert"] is False  # rooms were sent as before
        assert summary["drift"][n]["location_estimated"]["live"] == 1.0
        assert f"{n}: live MAPE" in alerts
        assert f"{n}: range coverage" in alerts


def test_the_text_output_names_each_alert(monitor: Any, drifted_log: str) -> None:
    result = monitor(drifted_log)
    assert result.exit_code == 1, result.output
    assert "ALERT: sale: size_m2 PSI" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "status: alert"


def test_too_few_valuations_are_shown_but_not_judged(monitor: Any, drifted_log: str) -> None:
    result = monitor(drifted_log, "--json", monitor_min_valuations="100000")
    summary = summary_of(result)
    assert [a for a in summary["alerts"] if "PSI" in a] == []
    assert any("drift shown, not judged" in note for note in summary["notes"])
    assert summary["drift"]["sale"]["variables"]["size_m2"]["psi"] > 0.25


def test_the_html_report_opens_offline(monitor: Any, drifted_log: str, tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    result = monitor(drifted_log, "-o", str(page))
    assert result.exit_code == 1, result.output
    text = page.read_text(encoding="utf-8")
    assert "Status: ALERT" in text
    for section in ("sale: inputs and predictions", "rent: inputs and predictions", "Live error"):
        assert section in text
    assert text.count("data:image/png;base64,") == 3  # drift per type, and the error chart
    assert "http://" not in text
    assert "https://" not in text


def test_other_models_valuations_are_left_out(monitor: Any, valuer: Valuer, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    store = Store(url)
    store.upgrade()
    valued = valuer.value(valuer.prepare(ITEM))
    rows = [
        row((time.time(), "api", f"r{i}", None, ITEM, valued, 0.002, None, 1.0)) for i in range(8)
    ]
    for r in rows[:5]:
        r["model_version"] = "20200101T000000Z-00000000"
    store.insert_valuations(rows)
    store.dispose()
    summary = summary_of(monitor(url, "--json"))
    assert summary["valuations"] == 3
    assert summary["other_versions"] == {"20200101T000000Z-00000000": 5}
    assert summary["drift"]["sale"]["valuations"] == 3
    assert summary["drift"]["sale"]["judged"] is False


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "a while"], "--since 'a while' is neither a duration"),
        (["--since", "2999-01-01"], "--since '2999-01-01' is in the future"),
        (["--model", "no-such-version"], "no model directory at"),
    ],
)
def test_user_mistakes_are_one_line_and_exit_2(
    monitor: Any, tmp_path: Path, args: list[str], message: str
) -> None:
    result = monitor(f"sqlite:///{tmp_path / 'log.db'}", *args)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines()[-1].startswith("Error: ")
    assert message in result.output
    assert "Traceback" not in result.output


def test_an_unreachable_database_is_exit_2(monitor: Any) -> None:
    result = monitor("postgresql://imovsp@127.0.0.1:1/imovsp")
    assert result.exit_code == 2, result.output
    assert "cannot use the prediction log at postgresql+psycopg://imovsp@127.0.0.1:1/imovsp" in (
        result.output
    )


def test_a_model_without_a_training_reference_cannot_be_monitored(
    monitor: Any, valuer: Valuer, tmp_path: Path
) -> None:
    old = Valuer.load(valuer.path)  # type: ignore[arg-type]
    old.reference = None
    del old.metadata["reference"]
    old.metadata = {**old.metadata, "version": "20200101T000000Z-00000000"}
    old.save(tmp_path, make_current=False)
    loaded = Valuer.load(tmp_path / "20200101T000000Z-00000000")  # old models still serve
    assert loaded.reference is None
    assert loaded.predict_one(old.prepare(ITEM)) > 0
    result = monitor("sqlite:///unused.db", "--model", str(loaded.path))
    assert result.exit_code == 2, result.output
    assert "keeps no training reference" in result.output


ITEM = {"negotiation": "sale", "district": "Santana", "size_m2": 80.0}


def test_the_reference_travels_in_the_artifact(valuer: Valuer, trained: Any) -> None:
    assert valuer.reference is not None
    assert "reference" in valuer.metadata
    saved, made = valuer.reference, trained.reference
    for n in made.rows:
        for name in drift.VARIABLES:
            np.testing.assert_array_equal(saved.binned[n][name].shares, made.binned[n][name].shares)
    size = saved.binned["sale"]["size_m2"]
    assert len(size.edges) == drift.BINS - 1
    assert size.shares.sum() == pytest.approx(1.0)
    assert saved.binned["sale"]["district_tier"].shares[-1] == 0  # the empty tier


def test_psi_is_zero_for_the_same_mix_and_grows_with_a_shift() -> None:
    rng = np.random.default_rng(0)
    train = drift.binned(rng.lognormal(4, 0.5, 20_000))
    same = drift.psi(train.shares, train.counts(rng.lognormal(4, 0.5, 5_000)))
    moved = drift.psi(train.shares, train.counts(rng.lognormal(4.3, 0.5, 5_000)))
    assert same < 0.01
    assert moved > 0.25
    # An empty live bin counts as half a value, not as an infinite shift.
    assert np.isfinite(drift.psi(np.full(10, 0.1), np.array([10] * 9 + [0])))


def test_district_tiers_hold_about_a_tenth_of_the_listings_each() -> None:
    shares = np.full(100, 0.01)
    tiers = drift.district_tiers(shares, np.arange(100.0)[::-1])
    assert np.bincount(tiers).tolist() == [10] * 10
    assert tiers[0] == 9
    assert tiers[-1] == 0
    unpriced = drift.district_tiers(shares, np.where(np.arange(100) < 3, np.nan, 1.0))
    assert unpriced[:3].tolist() == [drift.TIERS] * 3


def test_since_reads_durations_and_dates() -> None:
    from datetime import datetime

    from imovsp.monitoring.monitor import parse_since

    now = datetime(2026, 11, 27, 12, 0)
    assert parse_since("7d", now) == datetime(2026, 11, 20, 12, 0)
    assert parse_since("90m", now) == datetime(2026, 11, 27, 10, 30)
    assert parse_since("2026-11-01", now) == datetime(2026, 11, 1)
    assert parse_since("2026-11-01T08:00-03:00", now) == datetime(2026, 11, 1, 11, 0)


def test_db_upgrade_creates_then_keeps_the_schema(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("IMOVSP_DATABASE_URL", f"sqlite:///{tmp_path / 'log.db'}")
    get_settings.cache_clear()
    first = CliRunner().invoke(cli, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert f"schema {head()} (from an empty database)" in first.output
    again = CliRunner().invoke(cli, ["db", "upgrade"])
    assert again.exit_code == 0, again.output
    assert f"schema {head()} (already there)" in again.output


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "mysql://me@host/db",
            "IMOVSP_DATABASE_URL: Value error, use sqlite:///FILE or postgresql",
        ),
        (
            "postgresql://me:secret@127.0.0.1:1/db",
            "cannot use the prediction log at postgresql+psycopg://me:***@127.0.0.1:1/db",
        ),
    ],
)
def test_db_upgrade_mistakes_are_one_line_without_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("IMOVSP_DATABASE_URL", url)
    get_settings.cache_clear()
    result = CliRunner().invoke(cli, ["db", "upgrade"])
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "secret" not in result.output
    assert len(result.output.strip().splitlines()) == 1
