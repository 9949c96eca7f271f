"""The prediction log: every valuation served is recorded, in batches, off the request path; a
database that is down costs records (counted), never valuations; shutdown writes everything;
feedback ties a real price to a valuation. Against SQLite and a real PostgreSQL server."""

from __future__ import annotations

import json
import math
import os
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from everything import unavailable
from imovsp.api.feedback import FeedbackOut
from imovsp.api.schemas import PropertyIn
from imovsp.cli import cli
from imovsp.features import Property
from imovsp.monitoring import feedback as prediction_log_feedback
from imovsp.monitoring import recorder as prediction_log
from imovsp.monitoring.store import MIGRATIONS, Store, feedback, head, metadata, valuations
from imovsp.server import create_app
from imovsp.settings import Settings, get_settings
from imovsp.valuer import Valuer
from test_api import SANTANA, assert_error
from test_api_serve import BIN, free_port, server_env, stop, wait_ready

POSTGRES = "IMOVSP_TEST_POSTGRES_URL"
RENT = {"negotiation": "rent", "district": "Pinheiros", "size_m2": 70, "rooms": 2}
OLD_BODY = {"Size": 130, "Rooms": 4, "District_Santana": 1, "Negotiation Type_sale": 1}


def postgres_url() -> str:
    url = os.environ.get(POSTGRES)
    if not url:
        unavailable(f"no PostgreSQL to test against: set {POSTGRES} (`.ci/postgres start`)")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of each kind, as a URL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'log.db'}"
        return
    url = postgres_url()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS feedback, valuations, alembic_version"))
    engine.dispose()
    yield url


def settings_for(models_dir: Path, url: str, **extra: Any) -> Settings:
    return Settings(models_dir=models_dir, database_url=url, access_log=False, **extra)


def rows(url: str, table: sa.Table = valuations) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(table.c.id))]
    engine.dispose()
    return found


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_migrations_build_the_schema_the_code_uses(database: str) -> None:
    store = Store(database)
    assert store.revision() is None
    store.upgrade()
    assert store.revision() == head()
    store.upgrade()  # at head: nothing to do
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    store.dispose()


def test_every_valuation_served_is_recorded_with_its_inputs_and_answer(
    database: str, models_dir: Path
) -> None:
    with TestClient(create_app(settings_for(models_dir, database))) as client:
        single = client.post("/v1/valuations", json=SANTANA, headers={"x-request-id": "one"})
        batch = client.post(
            "/v1/valuations/batch",
            json={"items": [RENT, {**SANTANA, "district": "Atlantis"}, SANTANA]},
            headers={"x-request-id": "many"},
        )
        legacy = client.post("/", json=OLD_BODY, headers={"x-request-id": "old"})
        assert [r.status_code for r in (single, batch, legacy)] == [200, 200, 200]
        assert client.app.state.recorder.flush(10)  # type: ignore[attr-defined]
        found = rows(database)
    assert [(r["request_id"], r["source"], r["item_index"]) for r in found] == [
        ("one", "api", None),
        ("many", "batch", 0),
        ("many", "batch", 2),  # item 1 could not be valued: nothing served, nothing logged
        ("old", "legacy", None),
    ]
    one, answer = found[0], single.json()
    assert one["given"] == SANTANA
    assert one["defaulted"] == answer["not_given"]
    completed = answer["property"]
    for field in ("district", "size_m2", "rooms", "toilets", "suites", "parking", "elevator"):
        assert one[field] == completed[field], field
    # The log keeps the model's own month; the answer also says it beside the as_of price.
    assert round(one["price"], -3) == answer["price_at_data_month"]
    assert one["model_version"] == answer["model_version"]
    assert one["location_estimated"] is True
    assert one["level"] == 0.8
    assert one["price_low"] < one["price"] < one["price_high"]
    assert one["latency_ms"] > 0
    assert found[1]["negotiation"] == "rent"
    in_batch = batch.json()["items"][0]["valuation"]
    assert found[1]["price"] == pytest.approx(in_batch["price_at_data_month"], 1e-2)
    assert round(found[3]["price"], 2) == legacy.json()["Previsao do valor R$ "]
    # ...and the month and factor each answer was shown with; the old endpoint answers in the
    # model's month.
    assert one["as_of"] == answer["as_of"]
    assert round(one["index_factor"], 6) == answer["index_factor"] != 1.0
    assert (found[1]["as_of"], round(found[1]["index_factor"], 6)) == (
        in_batch["as_of"],
        in_batch["index_factor"],
    )
    assert (found[3]["as_of"], found[3]["index_factor"]) == (None, 1.0)


def test_the_writer_writes_the_row_that_row_describes(database: str, valuer: Valuer) -> None:
    """The writer builds its rows as tuples (recorder.values): the same values, in the same
    columns, as the rows row() describes, whatever was given and wherever it was shown."""
    store = Store(database)
    store.upgrade()
    now = time.time()
    given = [
        PropertyIn.model_validate(SANTANA),
        PropertyIn.model_validate({**SANTANA, "latitude": -23.4914, "longitude": -46.6202}),
        PropertyIn.model_validate({**RENT, "condo_fee": 0, "elevator": False}),
        {"size_m2": 70.0, "district": "Pinheiros", "negotiation": "rent"},  # as the web sends
    ]
    records = [
        (now - i, source, f"w{i}", index, item, valuer.value(valuer.prepare(dict(item))), 2e-3, *at)
        for i, (item, source, index, at) in enumerate(
            zip(
                given,
                ["api", "batch", "legacy", "web"],
                [None, 3, None, None],
                [("2025-08", 1.7712), ("2025-08", 1.7712), (None, 1.0), ("2019-04", 1.0)],
                strict=True,
            )
        )
    ]
    built = [prediction_log.values(r, store) for r in records]
    assert built == [store.values(prediction_log.row(r)) for r in records]
    store.insert_values(built)
    store.insert_valuations([prediction_log.row(r) for r in records])
    found = [dict(r._mapping) for r in store.find_valuations("w0")]
    found += [dict(r._mapping) for i in range(1, 4) for r in store.find_valuations(f"w{i}")]
    store.dispose()
    pairs = [(found[2 * i], found[2 * i + 1]) for i in range(4)]  # newest first: row(), values()
    for by_row, by_values in pairs:
        assert by_values["id"] < by_row["id"]
        assert {**by_values, "id": 0} == {**by_row, "id": 0}


def test_writes_go_in_batches_of_the_configured_size(
    database: str, models_dir: Path, valuer: Valuer
) -> None:
    store = Store(database)
    statements: list[int] = []

    @sa.event.listens_for(store.engine, "before_cursor_execute")
    def count(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO VALUATIONS"):
            statements.append(len(params) if isinstance(params, list) else 1)

    settings = settings_for(models_dir, database, log_batch_size=7, log_flush_seconds=60)
    log = prediction_log.Recorder(store, settings)
    valued = valuer.value(Property("sale", "Santana", 100.0, 3, 2, 1, 1))
    for i in range(30):
        log.record("api", f"r{i}", {"size_m2": 100.0}, valued, 0.001)
    log.start()
    assert log.flush(10)
    log.close()
    assert sum(statements) == 30
    assert len(statements) == math.ceil(30 / 7)  # one executemany per batch
    assert [r["request_id"] for r in rows(database)] == [f"r{i}" for i in range(30)]


def test_shutdown_writes_every_buffered_valuation(database: str, models_dir: Path) -> None:
    # Nothing is written before shutdown: the flush interval is longer than the test.
    settings = settings_for(models_dir, database, log_flush_seconds=60, log_batch_size=10_000)
    with TestClient(create_app(settings)) as client:
        for i in range(25):
            response = client.post(
                "/v1/valuations", json=SANTANA, headers={"x-request-id": f"s{i}"}
            )
            assert response.status_code == 200
        client.post("/v1/valuations/batch", json={"items": [RENT] * 15})
        recorder = client.app.state.recorder  # type: ignore[attr-defined]
        assert len(recorder.buffer) == 40
    found = rows(database)
    assert len(found) == 40
    assert {r["request_id"] for r in found[:25]} == {f"s{i}" for i in range(25)}


def test_valuations_are_served_while_the_database_is_down(models_dir: Path) -> None:
    # Nothing listens on this port: every connection is refused.
    down = f"postgresql+psycopg://imovsp@127.0.0.1:{free_port()}/imovsp"
    settings = settings_for(
        models_dir, down, log_flush_seconds=0.02, log_retries=2, log_shutdown_seconds=0.5
    )
    dropped = metric("imovsp_prediction_log_dropped_total", reason="database")
    errors = metric("imovsp_prediction_log_write_errors_total")
    with TestClient(create_app(settings)) as client:
        answers = [client.post("/v1/valuations", json=SANTANA) for _ in range(5)]
        assert [a.status_code for a in answers] == [200] * 5
        batch = client.post("/v1/valuations/batch", json={"items": [RENT] * 3})
        assert batch.status_code == 200
        recorder = client.app.state.recorder  # type: ignore[attr-defined]
        assert recorder.flush(30) is False  # tried, retried, gave up
        assert metric("imovsp_prediction_log_dropped_total", reason="database") == dropped + 8
        assert metric("imovsp_prediction_log_write_errors_total") >= errors + 3
        assert "imovsp_prediction_log_dropped_total" in client.get("/metrics").text
        rid = answers[0].json()["request_id"]
        response = client.post(
            "/v1/feedback", json={"request_id": rid, "actual_price": 9e5, "kind": "listed"}
        )
        assert_error(response, 503, "the prediction log's database is not answering")
        assert client.post("/v1/valuations", json=SANTANA).status_code == 200


def test_a_full_buffer_drops_new_records_and_counts_them(models_dir: Path, valuer: Valuer) -> None:
    settings = settings_for(models_dir, "sqlite:///unused.db", log_buffer_size=100)
    log = prediction_log.Recorder(None, settings)  # no writer: the buffer only fills
    valued = valuer.value(Property("rent", "Pinheiros", 70.0, 2, 1, 1, 1))
    before = metric("imovsp_prediction_log_dropped_total", reason="overflow")
    for i in range(130):
        log.record("api", f"r{i}", {}, valued, 0.001)
    assert len(log.buffer) == 100
    assert metric("imovsp_prediction_log_dropped_total", reason="overflow") == before + 30


def test_batches_wait_for_room_in_the_log_instead_of_dropping(
    models_dir: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'room.db'}"
    # The writer wakes every minute on its own: only a batch's wait can make it write sooner.
    settings = settings_for(models_dir, url, log_buffer_size=100, log_flush_seconds=60)
    dropped = metric("imovsp_prediction_log_dropped_total", reason="overflow")
    with TestClient(create_app(settings)) as client:
        for _ in range(4):
            response = client.post("/v1/valuations/batch", json={"items": [RENT] * 60})
            assert response.json()["valued"] == 60
    assert metric("imovsp_prediction_log_dropped_total", reason="overflow") == dropped
    assert len(rows(url)) == 240


def test_batches_do_not_wait_for_a_failing_database(
    models_dir: Path, tmp_path: Path, valuer: Valuer
) -> None:
    url = f"sqlite:///{tmp_path / 'no-such-dir' / 'log.db'}"  # cannot be created
    settings = settings_for(models_dir, url, log_buffer_size=100, log_shutdown_seconds=0)
    log = prediction_log.Recorder(Store(url), settings).start()
    try:
        deadline = time.monotonic() + 10
        while not log._failures and time.monotonic() < deadline:
            time.sleep(0.05)
        assert log._failures, "the writer should have failed to reach the database"
        valued = valuer.value(Property("rent", "Pinheiros", 70.0, 2, 1, 1, 1))
        for i in range(100):
            log.record("batch", f"r{i}", {}, valued, 0.001, i)
        started = time.monotonic()
        log.make_room(60, timeout=120)
        # A working writer would have been waited for, up to the timeout: a busy machine's
        # scheduling delays stay far below it.
        assert time.monotonic() - started < 30
    finally:
        log.close()


def test_the_log_can_be_turned_off(models_dir: Path, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'off.db'}"
    with TestClient(create_app(settings_for(models_dir, url, prediction_log=False))) as client:
        rid = client.post("/v1/valuations", json=SANTANA).json()["request_id"]
        response = client.post(
            "/v1/feedback", json={"request_id": rid, "actual_price": 9e5, "kind": "sold"}
        )
        assert_error(response, 503, "the prediction log is turned off")
    assert not (tmp_path / "off.db").exists()


# -- feedback -------------------------------------------------------------------------------


def test_feedback_right_after_a_valuation_is_stored(database: str, models_dir: Path) -> None:
    # The valuation is still in memory when the feedback arrives (nothing flushes on its own).
    settings = settings_for(models_dir, database, log_flush_seconds=60)
    with TestClient(create_app(settings)) as client:
        answer = client.post("/v1/valuations", json=SANTANA).json()
        response = client.post(
            "/v1/feedback",
            json={"request_id": answer["request_id"], "actual_price": 800_000, "kind": "sold"},
        )
        assert response.status_code == 201, response.text
        body = FeedbackOut.model_validate(response.json())
        assert body.request_id == answer["request_id"]
        assert body.model_version == answer["model_version"]
        # Compared with the price the client was shown (in as_of's money), not the log's.
        assert round(body.price, -3) == answer["price"]
        assert (body.as_of, round(body.index_factor, 6)) == (
            answer["as_of"],
            answer["index_factor"],
        )
        assert body.error_pct == pytest.approx(100 * (body.price / 800_000 - 1), abs=0.01)
        assert body.inside_range == (answer["price_low"] <= 800_000 <= answer["price_high"])
        batch = client.post("/v1/valuations/batch", json={"items": [SANTANA, RENT]}).json()
        second = client.post(
            "/v1/feedback",
            json={
                "request_id": batch["request_id"],
                "index": 1,
                "actual_price": 3900,
                "kind": "rented",
            },
        )
        assert second.status_code == 201, second.text
        assert second.json()["index"] == 1
        assert second.json()["negotiation"] == "rent"
    stored = rows(database, feedback)
    assert [(f["request_id"], f["actual_price"], f["kind"]) for f in stored] == [
        (answer["request_id"], 800_000, "sold"),
        (batch["request_id"], 3900, "rented"),
    ]
    logged = {r["id"]: r for r in rows(database)}
    assert logged[stored[0]["valuation_id"]]["request_id"] == answer["request_id"]
    assert logged[stored[1]["valuation_id"]]["item_index"] == 1


def test_feedback_at_the_price_shown_is_no_error(database: str, models_dir: Path) -> None:
    """The client reports a real price in the money of the answer it saw (as_of): feedback at
    exactly the shown price is 0% off and inside the shown range, whatever the index factor."""
    with TestClient(create_app(settings_for(models_dir, database))) as client:
        sale = client.post("/v1/valuations", json=SANTANA, params={"as_of": "2024-06"}).json()
        batch = client.post("/v1/valuations/batch", json={"items": [SANTANA, RENT]}).json()
        rent = batch["items"][1]["valuation"]
        old = client.post("/", json=OLD_BODY, headers={"x-request-id": "old-feedback"})
        assert old.status_code == 200
        assert client.app.state.recorder.flush(10)  # type: ignore[attr-defined]
        logged = {(r["request_id"], r["item_index"]): r for r in rows(database)}
        asked = [
            (sale, {"request_id": sale["request_id"], "kind": "sold"}),
            (rent, {"request_id": batch["request_id"], "index": 1, "kind": "rented"}),
        ]
        for answer, ask in asked:
            assert answer["index_factor"] > 1.1  # shown well above the model's month
            entry = logged[(ask["request_id"], ask.get("index"))]
            shown = entry["price"] * entry["index_factor"]  # the answer, before its rounding
            reply = client.post("/v1/feedback", json={**ask, "actual_price": shown})
            assert reply.status_code == 201, reply.text
            body = reply.json()
            assert body["error_pct"] == 0.0, body
            assert body["inside_range"] is True
            assert body["price"] == pytest.approx(shown)
            assert (body["as_of"], round(body["index_factor"], 6)) == (
                answer["as_of"],
                answer["index_factor"],
            )
            # At the rounded price the answer showed: off by the rounding only.
            rounded = client.post("/v1/feedback", json={**ask, "actual_price": answer["price"]})
            assert abs(rounded.json()["error_pct"]) < 0.5, rounded.json()
            assert rounded.json()["inside_range"] is True
        # The old endpoint answered in the model's month: factor 1, compared as it was.
        said = old.json()["Previsao do valor R$ "]
        reply = client.post(
            "/v1/feedback",
            json={"request_id": "old-feedback", "actual_price": said, "kind": "sold"},
        ).json()
        assert (reply["as_of"], reply["index_factor"]) == (None, 1.0)
        assert reply["error_pct"] == 0.0
        assert reply["price"] == pytest.approx(said, abs=0.01)


def test_migration_0003_keeps_older_rows_at_factor_1(
    database: str, models_dir: Path, valuer: Valuer
) -> None:
    """A log at 0002 with rows in it is upgraded: they were shown in the model's month."""
    engine = sa.create_engine(database)
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0002")
    with engine.begin() as conn:
        old = sa.Table("valuations", sa.MetaData(), autoload_with=conn)
        assert "index_factor" not in old.c
        valued = valuer.value(valuer.prepare(SANTANA))
        before = prediction_log.row(
            (time.time(), "api", "before", None, SANTANA, valued, 0.002, None, 1.0)
        )
        conn.execute(old.insert(), [{k: v for k, v in before.items() if k in old.c}])
    engine.dispose()
    store = Store(database)
    store.upgrade()
    assert store.revision() == head() == "0003"
    (found,) = store.find_valuations("before")
    assert (found.as_of, found.index_factor) == (None, 1.0)
    assert found.price == pytest.approx(valued.price)
    store.dispose()
    with TestClient(create_app(settings_for(models_dir, database))) as client:
        reply = client.post(
            "/v1/feedback",
            json={"request_id": "before", "actual_price": valued.price, "kind": "sold"},
        )
        assert reply.status_code == 201, reply.text
        assert (reply.json()["error_pct"], reply.json()["inside_range"]) == (0.0, True)


@pytest.fixture(scope="module")
def client(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path_factory.mktemp('feedback') / 'log.db'}"
    with TestClient(create_app(settings_for(models_dir, url))) as c:
        yield c


def test_feedback_for_an_unknown_request_is_404(client: TestClient) -> None:
    response = client.post(
        "/v1/feedback", json={"request_id": "nobody-asked", "actual_price": 1e6, "kind": "sold"}
    )
    assert_error(response, 404, "no valuation with request id 'nobody-asked' in the prediction log")


def uuid7_made(seconds_ago: float) -> str:
    """A request id as the service makes them (UUIDv7), made ``seconds_ago``."""
    ms = int((time.time() - seconds_ago) * 1000)
    return uuid.UUID(int=ms << 80 | 7 << 76 | 0x123 << 64 | 2 << 62 | 0x42).hex


def test_only_recent_ids_or_ids_a_client_chose_may_still_be_in_a_workers_memory() -> None:
    now = time.time()
    assert prediction_log_feedback.made_at(uuid7_made(0)) == pytest.approx(now, abs=1)
    assert prediction_log_feedback.may_be_in_memory(uuid7_made(1), held_for=3, now=now)
    assert not prediction_log_feedback.may_be_in_memory(uuid7_made(10), held_for=3, now=now)
    # A client's own id says nothing about when: it may be in memory whatever its text.
    for chosen in ("nobody-asked", uuid.uuid4().hex, "7" * 32):
        assert prediction_log_feedback.may_be_in_memory(chosen, held_for=3, now=now), chosen


def test_feedback_for_an_old_unknown_id_of_ours_is_404_without_waiting(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No worker holds a valuation longer than its flush interval: an id made an hour ago is
    # in the database or nowhere, and nothing is waited for.
    def no_waiting(seconds: float) -> None:
        raise AssertionError(f"waited {seconds} s for a valuation that cannot be in memory")

    clock = SimpleNamespace(monotonic=time.monotonic, time=time.time, sleep=no_waiting)
    monkeypatch.setattr(prediction_log_feedback, "time", clock)
    request_id = uuid7_made(3600)
    response = client.post(
        "/v1/feedback", json={"request_id": request_id, "actual_price": 1e6, "kind": "sold"}
    )
    assert_error(response, 404, f"no valuation with request id {request_id!r}")


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"actual_price": 1e6, "kind": "sold"}, "request_id: field required"),
        ({"request_id": "x", "kind": "sold"}, "actual_price: field required"),
        (
            {"request_id": "x", "actual_price": -5, "kind": "sold"},
            "actual_price: must be a price from R$ 100 to R$ 1,000,000,000",
        ),
        (
            {"request_id": "x", "actual_price": 1e6, "kind": "bought"},
            "kind: Input should be 'sold', 'rented' or 'listed'",
        ),
        (
            {"request_id": "x", "actual_price": 1e6, "kind": "sold", "when": 1},
            "when: unknown field",
        ),
        (
            {"request_id": "", "actual_price": 1e6, "kind": "sold"},
            "request_id: String should have at least 1 character",
        ),
    ],
)
def test_bad_feedback_bodies_are_422(client: TestClient, body: dict[str, Any], detail: str) -> None:
    assert_error(client.post("/v1/feedback", json=body), 422, detail)


@pytest.mark.parametrize("actual_price", [5e-324, 0.5, 99.99, 1.0000001e9, 1.7e308])
def test_feedback_with_a_price_no_property_has_is_422_saying_the_range(
    client: TestClient, actual_price: float
) -> None:
    """5e-324 was stored, and its error_pct (price / 5e-324 - 1, infinite) answered as null."""
    rid = client.post("/v1/valuations", json=SANTANA).json()["request_id"]
    response = client.post(
        "/v1/feedback", json={"request_id": rid, "actual_price": actual_price, "kind": "sold"}
    )
    assert_error(response, 422, "actual_price: must be a price from R$ 100 to R$ 1,000,000,000")


@pytest.mark.parametrize("actual_price", [100, 1e9])
def test_feedback_at_the_ends_of_the_price_range_gets_a_finite_error(
    client: TestClient, actual_price: float
) -> None:
    rid = client.post("/v1/valuations", json=SANTANA).json()["request_id"]
    response = client.post(
        "/v1/feedback", json={"request_id": rid, "actual_price": actual_price, "kind": "listed"}
    )
    assert response.status_code == 201, response.text
    assert math.isfinite(FeedbackOut.model_validate(response.json()).error_pct)


def test_feedback_of_the_wrong_kind_is_422(client: TestClient) -> None:
    rid = client.post("/v1/valuations", json=RENT).json()["request_id"]
    response = client.post(
        "/v1/feedback", json={"request_id": rid, "actual_price": 5e5, "kind": "sold"}
    )
    assert_error(response, 422, "kind 'sold' is for a sale, but request")


def test_feedback_on_a_batch_names_the_item(client: TestClient) -> None:
    rid = client.post("/v1/valuations/batch", json={"items": [SANTANA, SANTANA]}).json()[
        "request_id"
    ]
    ask = {"request_id": rid, "actual_price": 9e5, "kind": "listed"}
    assert_error(client.post("/v1/feedback", json=ask), 422, "valued a batch of 2 properties")
    assert_error(
        client.post("/v1/feedback", json={**ask, "index": 5}),
        404,
        f"request {rid!r} has no valuation at index 5 (it has 0, 1)",
    )
    assert client.post("/v1/feedback", json={**ask, "index": 0}).status_code == 201


def test_sigterm_writes_what_every_worker_still_holds(models_dir: Path, tmp_path: Path) -> None:
    """A real server with two workers, stopped as a platform stops it: every valuation it
    answered is in the log afterwards, although none was due to be written yet."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "imovsp"), "serve", "--port", str(port), "--workers", "2"],
        env=server_env(
            models_dir,
            IMOVSP_DATABASE_URL=url,
            IMOVSP_LOG_FLUSH_SECONDS="60",
            IMOVSP_LOG_BATCH_SIZE="100000",
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "metrics"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base, proc)

        def value(i: int) -> str:
            request = urllib.request.Request(
                f"{base}/v1/valuations",
                json.dumps(SANTANA).encode(),
                {"content-type": "application/json", "x-request-id": f"term-{i}"},
            )
            with urllib.request.urlopen(request, timeout=30) as r:
                return str(json.loads(r.read())["request_id"])

        with ThreadPoolExecutor(8) as pool:  # concurrent: both workers take some
            answered = set(pool.map(value, range(40)))
    finally:
        out = stop(proc)
    assert answered == {f"term-{i}" for i in range(40)}
    assert sorted(r["request_id"] for r in rows(url)) == sorted(answered), out
    assert "prediction_log_lost_at_shutdown" not in out


def test_feedback_finds_a_valuation_another_worker_still_holds(
    database: str, models_dir: Path, valuer: Valuer
) -> None:
    """With several workers, the valuation may sit in another process's buffer: feedback
    waits for that worker's next write instead of answering 404."""
    other = prediction_log.Recorder(
        Store(database), settings_for(models_dir, database, log_flush_seconds=0.05)
    )
    this = prediction_log.Recorder(
        Store(database), settings_for(models_dir, database, log_flush_seconds=2)
    )
    this.start()
    assert this.flush(10)  # schema in place
    other.record(
        "api",
        "elsewhere",
        SANTANA,
        valuer.value(Property("sale", "Santana", 130.0, 4, 3, 1, 2)),
        0.001,
    )
    other.start()
    try:
        stored = prediction_log_feedback.add(
            this, request_id="elsewhere", index=None, actual_price=7e5, kind="sold"
        )
    finally:
        other.close()
        this.close()
    assert stored["request_id"] == "elsewhere"
    assert stored["negotiation"] == "sale"


def test_prune_deletes_old_valuations_and_keeps_those_with_feedback(
    database: str, valuer: Valuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = Store(database)
    store.upgrade()
    valued = valuer.value(valuer.prepare(SANTANA))
    now, day = time.time(), 86_400.0
    ages = [100 * day] * 6 + [10 * day] * 3  # six past 90 days, three recent
    store.insert_valuations(
        [
            prediction_log.row((now - age, "api", f"r{i}", None, SANTANA, valued, 0.002, None, 1.0))
            for i, age in enumerate(ages)
        ]
    )
    (taught,) = store.find_valuations("r0")
    store.insert_feedback(
        valuation_id=taught.id, request_id="r0", actual_price=800_000.0, kind="sold"
    )
    monkeypatch.setenv("IMOVSP_DATABASE_URL", database)
    get_settings.cache_clear()

    def prune(*args: str) -> str:
        result = CliRunner().invoke(cli, ["db", "prune", *args])
        assert result.exit_code == 0, result.output
        return str(result.stdout.strip().splitlines()[-1])

    try:
        said = prune("--older-than", "90d", "--dry-run")
        assert "would delete 5 valuations recorded before" in said
        assert said.endswith("; 1 with feedback kept")
        assert len(rows(database)) == 9
        # A few rows per transaction, as on a busy log.
        steps: list[int] = []
        before = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=90)
        assert store.prune(before, batch=2, progress=steps.append) == (5, 1)
        assert steps == [2, 4, 5]
        assert sorted(r["request_id"] for r in rows(database)) == ["r0", "r6", "r7", "r8"]
        assert "deleted 0 valuations" in prune("--older-than", "90d")
        said = prune("--older-than", "90d", "--with-feedback")
        assert "deleted 1 valuation recorded" in said
        assert "kept" not in said
        assert [r["request_id"] for r in rows(database)] == ["r6", "r7", "r8"]
        assert rows(database, feedback) == []
        bad = CliRunner().invoke(cli, ["db", "prune", "--older-than", "soon"])
        assert bad.exit_code == 2
        assert bad.output.strip() == (
            "Error: --older-than 'soon' is neither a duration (30m, 12h, 7d, 2w) nor an ISO "
            "date or time (2026-11-01, 2026-11-01T08:00)"
        )
    finally:
        store.dispose()
        get_settings.cache_clear()


def test_row_times_and_fields_are_written_as_row_describes_them(
    tmp_path: Path, valuer: Valuer
) -> None:
    """values() makes each second's text once and writes a model that was sent whole in one go:
    times on, within and just short of a second (rounded up to the next), and models sent
    whole or in part, give what row() describes."""
    store = Store(f"sqlite:///{tmp_path / 'log.db'}")
    whole = {
        **SANTANA,
        "rooms": 2,
        "toilets": 2,
        "suites": 1,
        "parking": 1,
        "condo_fee": 500.0,
        "elevator": True,
        "furnished": False,
        "swimming_pool": False,
        "new": False,
        "latitude": -23.4914,
        "longitude": -46.6202,
    }
    models = [PropertyIn.model_validate(whole), PropertyIn.model_validate(SANTANA)]
    assert models[0].model_fields_set == set(PropertyIn.model_fields)
    v = valuer.value(valuer.prepare(dict(SANTANA)))
    base = 1_764_000_000.0
    times = [base, base + 0.25, base + 0.9999996, base + 1.000001, base + 1.5, base + 0.5]
    for given in [*models, dict(SANTANA)]:
        for at in times:
            record = (at, "api", "r", None, given, v, 0.01, None, 1.0)
            assert prediction_log.values(record, store) == store.values(prediction_log.row(record))


def test_a_sqlite_log_is_in_wal_mode_without_an_fsync_per_commit(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'log.db'}")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    store.dispose()
