"""Fuzzing: schemathesis sends requests generated from the app's own OpenAPI document, valid
and invalid, to the app in process (no network). Every answer must be documented (status code,
content type, schema, headers), no answer may be a 5xx, and invalid requests must be refused.

One check is left out: ``positive_data_acceptance`` expects every schema-valid request to
succeed, but a well-formed property can still be one the model cannot value (a district it
does not know, coordinates outside the city, a one-hot body with no district set), which the
API answers with a documented 422.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from imovsp.server import create_app
from imovsp.settings import Settings
from imovsp.valuer import Valuer

# Small limits, so that generated requests reach them; a token, so /admin/reload is enabled.
FUZZED = Settings(
    batch_max_items=20,
    max_body_bytes=64 * 1024,
    access_log=False,
    admin_token="fuzzing-token-0123456789",  # type: ignore[arg-type]
)
SCHEMA = schemathesis.openapi.from_dict(create_app(FUZZED).openapi())
EXAMPLES = 200  # per operation; operations with few distinct inputs stop earlier
SENT: list[tuple[str, int]] = []  # (operation, status) of every request sent
STARTED: list[float] = []


@pytest.fixture(scope="module")
def client(valuer: Valuer, models_dir: Path) -> Iterator[Any]:
    app = create_app(FUZZED.model_copy(update={"models_dir": models_dir}), valuer=valuer)
    STARTED.append(time.monotonic())
    with asgi.get_client(app) as session:
        yield session


@SCHEMA.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same requests in every run: a failure in CI reproduces here
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_generated_request_gets_a_documented_non_5xx_answer(case: Any, client: Any) -> None:
    response = case.call_and_validate(session=client, excluded_checks=[positive_data_acceptance])
    SENT.append((case.operation.label, response.status_code))


# -- what fuzzing found, pinned down ------------------------------------------------------------

SANTANA = {"negotiation": "sale", "district": "Santana", "size_m2": 130}


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        ({"new": 0}, "new: Input should be a valid boolean"),
        ({"elevator": "yes"}, "elevator: Input should be a valid boolean"),
        ({"size_m2": "130"}, "size_m2: Input should be a valid number"),
        ({"rooms": "3"}, "rooms: Input should be a valid integer"),
        ({"district": 7}, "district: Input should be a valid string"),
    ],
)
def test_json_values_of_the_wrong_type_are_refused_not_coerced(
    client: Any, change: dict[str, Any], detail: str
) -> None:
    response = client.post("/v1/valuations", json={**SANTANA, **change})
    assert response.status_code == 422, response.text
    assert response.json()["detail"] == detail


def test_whole_numbers_written_with_a_decimal_point_are_integers(client: Any) -> None:
    # JSON Schema's "integer" includes 2.0; so does the API.
    response = client.post("/v1/valuations", json={**SANTANA, "rooms": 2.0})
    assert response.status_code == 200, response.text
    assert response.json()["property"]["rooms"] == 2


def test_the_old_endpoint_keeps_reading_one_hot_numbers(client: Any) -> None:
    body = {"Size": 130, "Rooms": 4, "Elevator": 1, "New": 0, "District_Santana": 1}
    response = client.post("/", json={**body, "Negotiation Type_sale": 1})
    assert response.status_code == 200, response.text


def test_documented_bodies_match_what_the_routes_accept() -> None:
    components = SCHEMA.raw_schema["components"]["schemas"]
    assert components["BatchIn"]["properties"]["items"]["minItems"] == 1
    assert components["BatchIn"]["properties"]["items"]["maxItems"] == FUZZED.batch_max_items
    old = SCHEMA.raw_schema["paths"]["/"]["post"]["requestBody"]["content"]["application/json"]
    assert old["schema"]["additionalProperties"] is False
    assert old["schema"]["required"] == ["Size"]
    metrics = SCHEMA.raw_schema["paths"]["/metrics"]["get"]["responses"]["200"]["content"]
    assert list(metrics) == ["text/plain"]


def test_fuzzing_sent_at_least_1000_requests() -> None:
    """Runs after the fuzzing above (same module): it sent enough, and none got a 5xx."""
    assert STARTED, "run the whole module: the fuzzing test did not run"
    seconds = time.monotonic() - STARTED[0]
    statuses = Counter(status for _, status in SENT)
    operations = Counter(label for label, _ in SENT)
    print(f"\nfuzzing: {len(SENT)} requests in {seconds:.0f}s; by status {dict(statuses)}")
    print(f"by operation {dict(operations)}")
    assert len(SENT) >= 1000
    assert not [s for s in statuses if s >= 500]
    assert len(operations) == len(list(SCHEMA.get_all_operations()))
