"""The API's other endpoints: model card, districts, health, readiness, metrics, and ``POST /``
(the old deployment's one-hot request)."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imovsp.api.schemas import DistrictsOut, ErrorOut, ModelCard
from imovsp.server import create_app
from imovsp.settings import Settings
from imovsp.valuer import Valuer

SEED_REQUEST = Path(__file__).resolve().parents[1] / "../shared/examples/seed-request.json"
ANSWER = "Previsao do valor R$ "


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models_dir=models_dir))) as c:
        yield c


@pytest.fixture(scope="module")
def seed_body() -> dict[str, Any]:
    if SEED_REQUEST.is_file():
        body: dict[str, Any] = json.loads(SEED_REQUEST.read_text(encoding="utf-8"))
        return body
    pytest.skip("../shared/examples/seed-request.json is not beside this clone")


def assert_error(response: Any, status: int, detail: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    ErrorOut.model_validate(body)
    assert detail in body["detail"], body
    return dict(body)


def test_model_card_describes_the_served_model(client: TestClient, valuer: Valuer) -> None:
    response = client.get("/v1/model")
    assert response.status_code == 200, response.text
    card = ModelCard.model_validate(response.json())
    assert card.version == valuer.version
    assert card.data["sha256"] == valuer.metadata["data"]["sha256"]
    assert card.data["rows"] == valuer.metadata["data"]["rows"]
    assert set(card.metrics["test"]["imovsp"]) == {"sale", "rent"}
    assert card.feature_schema["features"] == valuer.metadata["feature_schema"]["features"]
    assert card.libraries["lightgbm"] == valuer.metadata["libraries"]["lightgbm"]
    first = card.typical_by_size[0]
    assert (first["size_from_m2"], first["size_to_m2"]) == (0.0, 40.0)
    assert card.typical_by_size[-1]["size_to_m2"] is None
    assert first["rooms"] == valuer.builder.typical(30)["rooms"]


def test_districts_lists_each_known_district_with_centre_and_prices(
    client: TestClient, valuer: Valuer
) -> None:
    response = client.get("/v1/districts")
    assert response.status_code == 200, response.text
    body = DistrictsOut.model_validate(response.json())
    assert body.count == len(valuer.builder.districts_) == len(body.districts)
    santana = next(d for d in body.districts if d.name == "Santana")
    assert santana.median_price_m2["sale"] == pytest.approx(
        valuer.builder.district_price_m2("Santana", "sale"), abs=0.01
    )
    assert -24.01 < santana.latitude < -23.35


def test_health_and_readiness(client: TestClient, valuer: Valuer) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert ready.json()["model_version"] == valuer.version


def test_metrics_count_requests_valuations_and_name_the_model(
    client: TestClient, valuer: Valuer
) -> None:
    def sample(text: str, line_start: str) -> float:
        lines = [ln for ln in text.splitlines() if ln.startswith(line_start)]
        return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0

    route = 'imovsp_http_requests_total{method="POST",route="/v1/valuations",status="200"}'
    sales = 'imovsp_valuations_total{negotiation="sale"}'
    before = client.get("/metrics").text
    item = {"negotiation": "sale", "district": "Santana", "size_m2": 80}
    client.post("/v1/valuations", json=item)
    client.post("/v1/valuations/batch", json={"items": [item, item]})
    client.post("/v1/valuations", json={**item, "size_m2": -1})
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    assert sample(after.text, route) - sample(before, route) == 1
    assert sample(after.text, sales) - sample(before, sales) == 3
    bad = 'imovsp_http_requests_total{method="POST",route="/v1/valuations",status="422"}'
    assert sample(after.text, bad) - sample(before, bad) == 1
    assert f'imovsp_model_info{{version="{valuer.version}"}} 1.0' in after.text
    assert "imovsp_http_request_duration_seconds_bucket" in after.text


# -- POST /: the old deployment's request -------------------------------------------------------


def test_seed_request_gets_a_price_from_the_new_model(
    client: TestClient, seed_body: dict[str, Any], valuer: Valuer
) -> None:
    response = client.post("/", json=seed_body)
    assert response.status_code == 200, response.text
    (key,) = response.json()
    assert key == ANSWER
    prop = valuer.prepare(
        {
            "negotiation": "sale",
            "district": "Santana",
            "size_m2": 130,
            "rooms": 4,
            "toilets": 5,
            "suites": 3,
            "parking": 1,
            "condo_fee": 1310,
            "elevator": True,
            "furnished": False,
            "swimming_pool": True,
            "new": False,
            "latitude": -23.491423,
            "longitude": -46.620248,
        }
    )
    assert response.json()[ANSWER] == round(valuer.predict_one(prop), 2)


def test_seed_request_keys_may_come_in_any_order(
    client: TestClient, seed_body: dict[str, Any]
) -> None:
    keys = list(seed_body)
    random.Random(3).shuffle(keys)
    shuffled = {k: seed_body[k] for k in keys}
    assert list(shuffled) != list(seed_body)
    assert client.post("/", json=shuffled).json() == client.post("/", json=seed_body).json()


def test_seed_request_zero_one_hots_may_be_left_out_and_content_type_is_not_needed(
    client: TestClient, seed_body: dict[str, Any]
) -> None:
    short = {k: v for k, v in seed_body.items() if v != 0 or "_" not in k}
    response = client.post("/", content=json.dumps(short).encode())  # as force=True allowed
    assert response.status_code == 200, response.text
    assert response.json() == client.post("/", json=seed_body).json()


def test_seed_request_zero_coordinates_mean_unknown(
    client: TestClient, seed_body: dict[str, Any]
) -> None:
    response = client.post("/", json={**seed_body, "Latitude": 0, "Longitude": 0})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"District_Santana": 0}, "no districts set: exactly one District_<name> key must be 1"),
        (
            {"District_Moema": 1},
            "2 districts set (District_Moema, District_Santana): exactly one District_<name>",
        ),
        ({"Negotiation Type_rent": 1}, "2 negotiation types set"),
        ({"Negotiation Type_sale": 0}, "no negotiation types set"),
        ({"District_Santana": 0, "District_Atlantis": 1}, "unknown district 'Atlantis'"),
        ({"Size": "big"}, "'Size' must be a number, not 'big'"),
        ({"Size": 1e9}, "Size: Input should be less than or equal to 2000"),
        ({"Rooms": 2.5}, "Rooms: Input should be a valid integer"),
        ({"Elevator": 3}, "Elevator: Input should be a valid boolean"),
        ({"District_Santana": 2}, "'District_Santana' is a one-hot key: it must be 0 or 1"),
        ({"Property Type_apartment": 0}, "only apartments can be valued"),
        ({"Colour": 1}, "unknown key(s): Colour"),
        ({"Latitude": -22.9, "Longitude": -43.2}, "are outside São Paulo"),
    ],
)
def test_seed_request_mistakes_are_422(
    client: TestClient, seed_body: dict[str, Any], change: dict[str, Any], detail: str
) -> None:
    assert_error(client.post("/", json={**seed_body, **change}), 422, detail)


def test_seed_request_without_size_is_422(client: TestClient, seed_body: dict[str, Any]) -> None:
    body = {k: v for k, v in seed_body.items() if k != "Size"}
    assert_error(client.post("/", json=body), 422, "'Size' is required")


@pytest.mark.parametrize(
    ("raw", "status", "detail"),
    [
        (b"", 400, "the request body is empty"),
        (b'{"Size": 130,', 400, "malformed JSON: Expecting property name"),
        (b'{"Size": NaN}', 400, "malformed JSON: NaN is not a valid JSON number"),
        (b"[130]", 422, "the request body must be a JSON object"),
    ],
)
def test_seed_request_bad_bodies(client: TestClient, raw: bytes, status: int, detail: str) -> None:
    response = client.post("/", content=raw, headers={"content-type": "application/json"})
    assert_error(response, status, detail)


def test_openapi_in_docs_is_the_one_served(client: TestClient) -> None:
    kept = json.loads((Path(__file__).resolve().parents[1] / "docs/openapi.json").read_text())
    served = client.get("/openapi.json").json()
    assert kept == served, "regenerate it: make openapi"
    paths = served["paths"]
    assert set(paths) == {
        "/",
        "/v1/valuations",
        "/v1/valuations/batch",
        "/v1/model",
        "/v1/districts",
        "/v1/feedback",
        "/bairros",
        "/healthz",
        "/readyz",
        "/metrics",
        "/admin/reload",
    }
    body = paths["/v1/valuations"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == {"$ref": "#/components/schemas/PropertyIn"}
    size = served["components"]["schemas"]["PropertyIn"]["properties"]["size_m2"]
    assert (size["minimum"], size["maximum"]) == (10, 2000)
    options = [p["name"] for p in paths["/v1/valuations"]["post"]["parameters"]]
    assert options == ["level", "explain", "comparables", "as_of"]


def test_interactive_docs_are_served(client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "swagger" in response.text.lower()
    # Every file from the app itself (the browser test opens it offline).
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert re.findall(r'(?:src|href)="([^"]*)"', response.text) == [
        "/docs/assets/swagger-ui.css",
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/init.js",
    ]
    for url in ("/docs/assets/swagger-ui-bundle.js", "/docs/init.js"):
        assert client.get(url).headers["content-type"].startswith("text/javascript")
    assert client.get("/redoc").status_code == 404  # ReDoc would need a CDN: not served


def test_log_timestamps_remembering_the_last_second_read_as_formatted_afresh() -> None:
    import time

    from imovsp.server import telemetry

    def afresh(seconds: float) -> str:
        whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        return f"{whole}.{int(seconds % 1 * 1000):03d}Z"

    rng = random.Random(7)
    start = 1_764_806_399.0  # 2025-12-03T23:59:59Z: the next second is another day
    times = [start + rng.random() * 3 for _ in range(500)]
    times += [start + 0.9995, start + 1.0, 1_800_000_000.0, 0.0, start]
    for seconds in [*sorted(times), *times]:  # in order, as a server logs, and out of order
        assert telemetry.timestamp(seconds) == afresh(seconds), seconds
