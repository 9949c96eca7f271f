"""The HTTP API's valuation endpoints: answers, defaults, options, and every bad-input path."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imovsp import price_index
from imovsp.api.schemas import BatchOut, ErrorOut, ValuationOut
from imovsp.features import Property
from imovsp.server import create_app, telemetry
from imovsp.settings import Settings
from imovsp.valuer import Valuation, Valuer

SANTANA = {"negotiation": "sale", "district": "Santana", "size_m2": 130, "rooms": 4}
FULL = {
    "negotiation": "rent",
    "district": "Pinheiros",
    "size_m2": 70,
    "rooms": 2,
    "toilets": 2,
    "suites": 1,
    "parking": 1,
    "condo_fee": 900,
    "elevator": True,
    "furnished": False,
    "swimming_pool": True,
    "new": False,
    "latitude": -23.5614,
    "longitude": -46.6903,
}


@pytest.fixture(scope="module")
def settings(models_dir: Path) -> Settings:
    return Settings(models_dir=models_dir, max_body_bytes=64_000, batch_max_items=50)


@pytest.fixture(scope="module")
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def assert_error(response: Any, status: int, detail: str) -> dict[str, Any]:
    """The response is a JSON error with this status whose detail contains ``detail``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    ErrorOut.model_validate(body)
    assert detail in body["detail"], body
    assert body["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text
    return dict(body)


def value(client: TestClient, body: Any, **kwargs: Any) -> Any:
    return client.post("/v1/valuations", json=body, **kwargs)


# -- success --------------------------------------------------------------------------------


def test_valuation_matches_the_valuer_and_prices_fields_not_given_as_unknown(
    client: TestClient, valuer: Valuer
) -> None:
    response = value(client, SANTANA)
    assert response.status_code == 200, response.text
    body = ValuationOut.model_validate(response.json())
    prop = valuer.prepare(SANTANA)
    expected = valuer.predict_one(prop)
    # In the money of the index's latest sale month, and in the model's own beside it.
    factor = price_index.load().factor("sale", valuer.data_month, "2025-08")
    assert (body.as_of, body.index_factor) == ("2025-08", round(factor, 6))
    assert body.price == round(expected * factor, -3)
    assert body.price_at_data_month == round(expected, -3)
    assert body.negotiation == "sale"
    assert body.district == "Santana"
    assert not body.per_month
    not_given = [
        "toilets",
        "suites",
        "parking",
        "condo_fee",
        "elevator",
        "furnished",
        "swimming_pool",
        "new",
        "location",
    ]
    assert body.not_given == body.defaulted == list(prop.not_given) == not_given
    assert body.property.rooms == 4  # given, kept
    assert body.property.toilets is None  # not given: unknown, not a typical value
    # The typical values are there as context, and were not what was priced.
    assert body.typical is not None
    assert body.typical["toilets"] == valuer.builder.typical(130)["toilets"]
    typical = {**SANTANA, **body.typical}
    assert valuer.predict_one(valuer.prepare(typical)) != expected
    assert body.location_estimated is True
    assert body.property.latitude is None
    assert body.model_version == valuer.version
    assert body.request_id == response.headers["x-request-id"]
    assert body.price_m2 == pytest.approx(expected * factor / 130, abs=0.01)


def test_valuation_says_which_fields_would_narrow_its_range(client: TestClient) -> None:
    body = ValuationOut.model_validate(value(client, SANTANA).json())
    assert body.width_pct is not None
    # Which fields narrow the range depends on the data (test_partial checks the choice).
    widths = [s.width_pct for s in body.sharpen]
    assert widths == sorted(widths)
    for hint in body.sharpen:
        assert hint.width_pct < body.width_pct
        assert set(hint.fields) <= set(body.not_given)
        assert hint.message.startswith(f"give {', '.join(hint.fields)}: ±")
    complete = ValuationOut.model_validate(value(client, FULL).json())
    assert complete.sharpen == []
    assert complete.typical is None


def test_valuation_with_every_field_defaults_nothing(client: TestClient, valuer: Valuer) -> None:
    response = value(client, FULL)
    assert response.status_code == 200, response.text
    body = ValuationOut.model_validate(response.json())
    expected = valuer.predict_one(Property(**FULL))
    assert body.price_at_data_month == round(expected, -1)  # rents are rounded to R$ 10
    assert body.per_month is True
    assert body.defaulted == body.not_given == []
    assert body.location_estimated is False
    assert (body.property.latitude, body.property.longitude) == (-23.5614, -46.6903)


@pytest.mark.parametrize(
    "district", ["santana", "SANTANA", "Santana/São Paulo", "  santana  ", "Sãntana"]
)
def test_district_is_case_and_accent_insensitive(client: TestClient, district: str) -> None:
    response = value(client, {**SANTANA, "district": district})
    assert response.status_code == 200, response.text
    assert response.json()["district"] == "Santana"


def test_negotiation_is_case_insensitive(client: TestClient) -> None:
    response = value(client, {**SANTANA, "negotiation": "SALE"})
    assert response.status_code == 200, response.text
    assert response.json()["negotiation"] == "sale"


def test_range_by_default_and_reasons_comparables_only_when_asked(client: TestClient) -> None:
    body = value(client, SANTANA).json()
    assert body["level"] == 0.8
    assert body["price_low"] < body["price"] < body["price_high"]
    for name in ("reasons", "comparables", "baseline"):
        assert body[name] is None
    assert body["notes"] == []


def test_explain_and_comparables_are_served(client: TestClient) -> None:
    response = client.post("/v1/valuations?explain=true&comparables=3&level=0.9", json=SANTANA)
    assert response.status_code == 200, response.text
    body = response.json()
    ValuationOut.model_validate(body)  # the comparables' fields too: extra keys are refused
    assert body["level"] == 0.9
    assert len(body["comparables"]) == 3
    assert body["baseline"] > 0
    assert any(r["feature"] == "location" for r in body["reasons"])
    assert body["notes"] == []


def test_client_request_id_is_echoed_and_a_bad_one_replaced(client: TestClient) -> None:
    response = value(client, SANTANA, headers={"X-Request-ID": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert response.json()["request_id"] == "abc-123"
    response = value(client, SANTANA, headers={"X-Request-ID": "bad id\twith spaces"})
    assert response.headers["x-request-id"] != "bad id\twith spaces"
    assert len(response.headers["x-request-id"]) == 32


def test_request_ids_made_here_are_uuid7_in_time_order(client: TestClient) -> None:
    # Time first, so that the prediction log's index on them grows at its end.
    ids = []
    for _ in range(3):
        ids.append(value(client, SANTANA).headers["x-request-id"])
        time.sleep(0.002)  # another millisecond: ordered by the clock, not only by a counter
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    for rid in ids:
        parsed = uuid.UUID(hex=rid)
        assert parsed.version == 7
        assert parsed.hex == rid
        made = int(rid[:12], 16) / 1000  # UUIDv7: Unix time in ms, first 48 bits
        assert abs(made - time.time()) < 60


def test_access_log_is_one_json_line_with_the_request_id(
    client: TestClient, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="imovsp.access")  # as `imovsp serve` sets it
    capsys.readouterr()
    response = value(client, SANTANA, headers={"X-Request-ID": "log-me"})
    client.get("/healthz")  # the line goes out at the next turn of the server's event loop
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    (line,) = [x for x in lines if x.get("request_id") == "log-me"]
    assert line["logger"] == "imovsp.access"
    assert line["request_id"] == "log-me" == response.headers["x-request-id"]
    assert line["route"] == "/v1/valuations"
    assert line["status"] == 200
    assert line["duration_ms"] > 0
    assert line["level"] == "info"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["ts"])


def test_access_log_follows_its_logger_level(
    client: TestClient, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="imovsp.access")
    capsys.readouterr()
    assert value(client, SANTANA).status_code == 200
    assert "imovsp.access" not in capsys.readouterr().out


def test_access_line_leaves_a_block_buffered_stdout_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "stdout.log"
    with path.open("w", buffering=8192) as out:  # as stdout to a file or pipe, unbuffered not set
        monkeypatch.setattr(sys, "stdout", out)
        telemetry.log_access({"event": "request", "status": 200})
        assert json.loads(path.read_text())["status"] == 200


def test_access_lines_of_one_loop_turn_go_out_in_one_write(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes: list[str] = []

    class Out:
        line_buffering = True

        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    monkeypatch.setattr(sys, "stdout", Out())

    async def serve_three() -> list[str]:
        for status in (200, 404, 422):
            telemetry.log_access({"event": "request", "status": status})
        before = list(writes)
        await asyncio.sleep(0)  # the loop's next turn
        return before

    assert asyncio.run(serve_three()) == []
    (written,) = writes
    assert [json.loads(x)["status"] for x in written.splitlines()] == [200, 404, 422]
    assert written.endswith("\n")


# -- options (ranges, reasons, comparables) ---------------------------------------------------


class _WithOptions(Valuer):
    """A Valuer that records the options it was asked to value with."""

    seen: list[dict[str, Any]] = []  # noqa: RUF012 - a test spy

    def value_many(  # type: ignore[override]
        self,
        props: Sequence[Property],
        *,
        level: float = 0.8,
        explain: bool = False,
        comparables: int = 0,
    ) -> list[Valuation]:
        self.seen.append({"level": level, "explain": explain, "comparables": comparables})
        return super().value_many(props)


def _client_with(kind: type[Valuer], valuer: Valuer, settings: Settings) -> TestClient:
    served = kind(
        valuer.builder,
        valuer.boosters,
        valuer.metadata,
        calibrations=valuer.calibrations,
        listings=valuer.listings,
    )
    return TestClient(create_app(settings, valuer=served))


def test_options_pass_through_to_a_valuer_that_takes_them(
    valuer: Valuer, settings: Settings
) -> None:
    _WithOptions.seen.clear()
    with _client_with(_WithOptions, valuer, settings) as c:
        response = c.post("/v1/valuations?level=0.9&explain=true&comparables=5", json=SANTANA)
        assert response.status_code == 200, response.text
        assert response.json()["notes"] == []
        assert c.post("/v1/valuations", json=SANTANA).status_code == 200
    assert _WithOptions.seen == [
        {"level": 0.9, "explain": True, "comparables": 5},
        {"level": 0.8, "explain": False, "comparables": 0},  # the documented defaults
    ]


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("level=0.99", "level: Input should be less than or equal to 0.95"),
        ("level=0.1", "level: Input should be greater than or equal to 0.5"),
        ("level=nan", "level: must be a finite number"),
        ("comparables=21", "comparables: Input should be less than or equal to 20"),
        ("explain=maybe", "explain: Input should be a valid boolean"),
    ],
)
def test_bad_options_are_422(client: TestClient, query: str, detail: str) -> None:
    assert_error(client.post(f"/v1/valuations?{query}", json=SANTANA), 422, detail)


# -- bad input ----------------------------------------------------------------------------------


def test_unknown_district_is_422_with_the_closest_names(client: TestClient) -> None:
    body = assert_error(
        value(client, {**SANTANA, "district": "Santanna"}), 422, "unknown district 'Santanna'"
    )
    assert "Santana" in body["suggestions"]
    assert "closest known: Santana" in body["detail"]


def test_coordinates_outside_the_city_are_422(client: TestClient) -> None:
    response = value(client, {**SANTANA, "latitude": -22.9, "longitude": -43.2})  # Rio
    assert_error(response, 422, "coordinates (-22.9, -43.2) are outside São Paulo")


def test_only_one_coordinate_is_422(client: TestClient) -> None:
    response = value(client, {**SANTANA, "latitude": -23.5})
    assert_error(response, 422, "give both latitude and longitude, or neither")


CONDO_FEE_RANGE = "must be 0 (unknown) or a monthly fee from R$ 1 to R$ 100,000"


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"size_m2": None}, "size_m2: Input should be a valid number"),
        ({"size_m2": "big"}, "size_m2: Input should be a valid number"),
        ({"size_m2": 0}, "size_m2: Input should be greater than or equal to 10"),
        ({"size_m2": 1e300}, "size_m2: Input should be less than or equal to 2000"),
        ({"rooms": -1}, "rooms: Input should be greater than or equal to 0"),
        ({"rooms": 2.5}, "rooms: Input should be a valid integer, got a number with a fractional"),
        ({"rooms": 10**30}, "rooms: Input should be less than or equal to 20"),
        ({"parking": 31}, "parking: Input should be less than or equal to 30"),
        ({"condo_fee": -5}, "condo_fee: Input should be greater than or equal to 0"),
        ({"condo_fee": 5e-324}, f"condo_fee: {CONDO_FEE_RANGE}"),
        ({"condo_fee": 0.5}, f"condo_fee: {CONDO_FEE_RANGE}"),
        ({"condo_fee": 100_001}, "condo_fee: Input should be less than or equal to 100000"),
        ({"elevator": "perhaps"}, "elevator: Input should be a valid boolean"),
        ({"negotiation": "swap"}, "negotiation: Input should be 'sale' or 'rent'"),
        ({"district": ""}, "district: String should have at least 1 character"),
        ({"district": "x" * 81}, "district: String should have at most 80 characters"),
        ({"latitude": 91, "longitude": 0}, "latitude: Input should be less than or equal to 90"),
        ({"sise_m2": 80}, "sise_m2: unknown field"),
    ],
)
def test_invalid_fields_are_422_naming_the_field(
    client: TestClient, change: dict[str, Any], detail: str
) -> None:
    body = assert_error(value(client, {**SANTANA, **change}), 422, detail)
    assert body["errors"][0]["field"] == next(iter(change))


def test_missing_required_fields_are_all_named(client: TestClient) -> None:
    body = assert_error(value(client, {"rooms": 2}), 422, "negotiation: field required")
    assert [e["field"] for e in body["errors"]] == ["negotiation", "district", "size_m2"]
    assert "district: field required; size_m2: field required" in body["detail"]


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_422(client: TestClient, token: str) -> None:
    raw = f'{{"negotiation": "sale", "district": "Santana", "size_m2": {token}}}'
    response = client.post(
        "/v1/valuations", content=raw, headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "size_m2: must be a finite number (NaN and Infinity")


def test_malformed_json_is_400(client: TestClient) -> None:
    response = client.post(
        "/v1/valuations",
        content=b'{"negotiation": "sale",',
        headers={"content-type": "application/json"},
    )
    assert_error(response, 400, "malformed JSON: EOF while parsing a value at line 1 column 23")


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        (b"", "the request body is empty: send a JSON object"),
        (b"[1, 2]", "the request body must be a JSON object"),
        (b'"sale"', "the request body must be a JSON object"),
    ],
)
def test_empty_or_non_object_body_is_422(client: TestClient, raw: bytes, detail: str) -> None:
    response = client.post(
        "/v1/valuations", content=raw, headers={"content-type": "application/json"}
    )
    assert_error(response, 422, detail)


@pytest.mark.parametrize(
    ("content_type", "shown"),
    [("text/plain", "'text/plain'"), ("application/x-www-form-urlencoded", "'application/x-www")],
)
def test_wrong_content_type_is_415(client: TestClient, content_type: str, shown: str) -> None:
    response = client.post(
        "/v1/valuations", content=json.dumps(SANTANA), headers={"content-type": content_type}
    )
    assert_error(response, 415, f"Content-Type: application/json (got {shown}")


def test_missing_content_type_is_415(client: TestClient) -> None:
    response = client.post("/v1/valuations", content=json.dumps(SANTANA).encode())
    assert_error(response, 415, "as JSON with Content-Type: application/json (got none)")


def test_body_over_the_limit_is_413(client: TestClient) -> None:
    raw = json.dumps({**SANTANA, "district": "x" * 70_000})
    response = client.post(
        "/v1/valuations", content=raw, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, f"request body is {len(raw):,} bytes; the limit is 64,000 bytes")


def test_streamed_body_over_the_limit_is_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"negotiation": "sale", "district": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = client.post(
        "/v1/valuations", content=chunks(), headers={"content-type": "application/json"}
    )
    assert "content-length" not in response.request.headers  # sent chunked
    assert_error(response, 413, "request body is over the limit of 64,000 bytes")


def test_unknown_route_is_404(client: TestClient) -> None:
    assert_error(client.get("/v2/valuations"), 404, "no such route: GET /v2/valuations")


def test_wrong_method_is_405_naming_the_allowed_one(client: TestClient) -> None:
    response = client.get("/v1/valuations")
    assert_error(response, 405, "method GET is not allowed on /v1/valuations; use POST")
    assert response.headers["allow"] == "POST"


# -- batch ----------------------------------------------------------------------------------------


def test_batch_values_each_item_in_order_and_reports_bad_ones_in_place(
    client: TestClient, valuer: Valuer
) -> None:
    items = [SANTANA, {**SANTANA, "district": "Atlantis"}, FULL]
    response = client.post("/v1/valuations/batch", json={"items": items})
    assert response.status_code == 200, response.text
    body = BatchOut.model_validate(response.json())
    assert (body.count, body.valued, body.errors) == (3, 2, 1)
    assert [i.index for i in body.items] == [0, 1, 2]
    first, bad, last = body.items
    assert first.valuation is not None
    assert last.valuation is not None
    single = value(client, SANTANA).json()
    assert first.valuation.price == single["price"]
    assert last.valuation.negotiation == "rent"
    assert bad.valuation is None
    assert bad.error is not None
    assert bad.error.startswith("unknown district 'Atlantis'")
    assert body.request_id == response.headers["x-request-id"]
    assert first.valuation.request_id == body.request_id


def test_batch_item_errors_name_the_item(client: TestClient) -> None:
    items = [SANTANA, {**SANTANA, "size_m2": -1}]
    response = client.post("/v1/valuations/batch", json={"items": items})
    body = assert_error(response, 422, "items.1.size_m2: Input should be greater than or equal")
    assert body["errors"][0]["field"] == "items.1.size_m2"


def test_empty_batch_is_422(client: TestClient) -> None:
    response = client.post("/v1/valuations/batch", json={"items": []})
    assert_error(response, 422, "items is empty: send at least one property")


def test_batch_over_the_item_limit_is_422(client: TestClient) -> None:
    response = client.post("/v1/valuations/batch", json={"items": [SANTANA] * 51})
    assert_error(response, 422, "items holds 51 properties; the limit is 50")


def test_batch_without_items_is_422(client: TestClient) -> None:
    response = client.post("/v1/valuations/batch", json=[SANTANA])
    assert_error(response, 422, "the request body must be a JSON object")
    response = client.post("/v1/valuations/batch", json={"item": [SANTANA]})
    assert_error(response, 422, "items: field required; item: unknown field")


def test_default_batch_limit_is_1000(models_dir: Path) -> None:
    assert Settings(models_dir=models_dir).batch_max_items == 1000


def test_batch_over_the_body_limit_is_413_saying_how_many_items_a_batch_takes(
    client: TestClient,
) -> None:
    raw = json.dumps({"items": [SANTANA] * 1000})
    response = client.post(
        "/v1/valuations/batch", content=raw, headers={"content-type": "application/json"}
    )
    assert_error(
        response,
        413,
        f"request body is {len(raw):,} bytes; the limit is 64,000 bytes: send at most 50 "
        "items a batch, in several requests if need be",
    )
    # Answered before the body was read: read and dropped, then the connection is closed.
    assert response.headers["connection"] == "close"


@pytest.mark.parametrize("condo_fee", [0, 1, 100_000])
def test_condo_fees_at_the_ends_of_their_range_are_valued(
    client: TestClient, condo_fee: float
) -> None:
    response = value(client, {**SANTANA, "condo_fee": condo_fee})
    assert response.status_code == 200, response.text
