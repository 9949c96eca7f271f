"""Reloading the served model in process (``POST /admin/reload``, the reload interval) and the
per-client rate limit. The real server (workers, SIGHUP, load) is in test_rollout_serve.py."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from imovsp import artifact, rollout
from imovsp.server import create_app
from imovsp.settings import Settings
from model_versions import A, B, C, corrupt, incompatible, models_with
from test_api import SANTANA, assert_error

TOKEN = "admin-token-for-tests-0123"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def models(tmp_path: Path, models_dir: Path) -> Path:
    return models_with(tmp_path, models_dir, A, B, C)


def serving(models: Path, **settings: Any) -> TestClient:
    chosen = {"models_dir": models, "admin_token": TOKEN, "access_log": False, **settings}
    return TestClient(create_app(Settings(**chosen)))


def served_version(client: TestClient) -> str:
    response = client.post("/v1/valuations", json=SANTANA)
    assert response.status_code == 200, response.text
    version: str = response.json()["model_version"]
    assert client.get("/readyz").json()["model_version"] == version
    return version


def reloads(client: TestClient, outcome: str) -> float:
    """``imovsp_model_reloads_total`` for ``outcome``, as /metrics says (0 before any)."""
    prefix = f'imovsp_model_reloads_total{{outcome="{outcome}"}} '
    lines = client.get("/metrics").text.splitlines()
    return sum(float(line.removeprefix(prefix)) for line in lines if line.startswith(prefix))


def wait_for(condition: Callable[[], bool], what: str, *, timeout: float = 30) -> None:
    """Return once ``condition()`` holds; fail saying ``what`` did not happen by the deadline."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


@pytest.fixture
def client(models: Path) -> Iterator[TestClient]:
    with serving(models) as c:
        yield c


def test_reload_serves_the_promoted_version(client: TestClient, models: Path) -> None:
    assert served_version(client) == A
    rollout.promote(models, B)
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "reloaded"
    assert (body["model_version"], body["previous_version"]) == (B, A)
    assert body["workers_signalled"] is False  # one process: nobody else to tell
    assert served_version(client) == B
    assert client.get("/v1/model").json()["version"] == B
    metrics = client.get("/metrics").text
    assert f'imovsp_model_info{{version="{B}"}} 1.0' in metrics
    assert f'imovsp_model_info{{version="{A}"}} 0.0' in metrics
    again = client.post("/admin/reload", headers=AUTH).json()
    assert (again["status"], again["model_version"]) == ("unchanged", B)


def test_reload_after_rollback_serves_the_previous_version(
    client: TestClient, models: Path
) -> None:
    rollout.promote(models, C)
    client.post("/admin/reload", headers=AUTH)
    rollout.rollback(models)
    assert client.post("/admin/reload", headers=AUTH).json()["model_version"] == A
    assert served_version(client) == A


@pytest.mark.parametrize("spoil", [corrupt, incompatible], ids=["corrupt", "incompatible"])
def test_an_unusable_current_model_is_refused_and_the_old_one_keeps_serving(
    client: TestClient, models: Path, spoil: Any
) -> None:
    # CURRENT may name a model that broke after it was promoted (or was set by hand).
    reason = spoil(models / B)
    (models / artifact.CURRENT).write_text(B + "\n")
    refused = reloads(client, "refused")
    response = client.post("/admin/reload", headers=AUTH)
    assert_error(response, 409, f"refused model {B}: ")
    assert reason in response.json()["detail"]
    assert response.json()["detail"].endswith(f"still serving {A}")
    assert served_version(client) == A
    assert reloads(client, "refused") == refused + 1


def test_no_current_model_is_refused(client: TestClient, models: Path) -> None:
    (models / artifact.CURRENT).unlink()
    assert_error(client.post("/admin/reload", headers=AUTH), 409, "no current model in")
    assert served_version(client) == A


@pytest.mark.parametrize(
    "headers",
    [{}, {"authorization": "Bearer wrong-token-0123456789"}, {"authorization": TOKEN}],
    ids=["none", "wrong", "not bearer"],
)
def test_reload_without_the_token_is_401(client: TestClient, headers: dict[str, str]) -> None:
    response = client.post("/admin/reload", headers=headers)
    assert_error(response, 401, "send the admin token as Authorization: Bearer")
    assert response.headers["www-authenticate"] == "Bearer"


def test_reload_is_disabled_without_a_configured_token(models: Path) -> None:
    with serving(models, admin_token=None) as client:
        rollout.promote(models, B)
        response = client.post("/admin/reload", headers=AUTH)
        assert_error(response, 403, "the admin API is disabled: set IMOVSP_ADMIN_TOKEN")
        assert served_version(client) == A


def test_a_reload_interval_follows_current_without_being_asked(models: Path) -> None:
    with serving(models, reload_interval=0.1) as client:
        rollout.promote(models, B)
        # Asked of /readyz alone: a valuation and a later /readyz may straddle the reload.
        wait_for(
            lambda: client.get("/readyz").json()["model_version"] == B,
            "the new current model was not picked up",
        )
        assert served_version(client) == B
        # A broken current model is refused once, and the served one stays.
        refused = reloads(client, "refused")
        corrupt(models / C)
        (models / artifact.CURRENT).write_text(C + "\n")
        wait_for(lambda: reloads(client, "refused") > refused, "the broken model was not tried")
        assert served_version(client) == B


def test_short_admin_tokens_are_refused_at_start() -> None:
    with pytest.raises(ValueError, match="the admin token must be 16 characters or more"):
        Settings(admin_token="short")  # type: ignore[arg-type]


# -- the rate limit ---------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_on_every_route(models: Path) -> None:
    with serving(models, rate_limit="3/minute") as client:
        for _ in range(3):
            assert client.post("/v1/valuations", json=SANTANA).status_code == 200
        for method, path in [("POST", "/v1/valuations"), ("GET", "/v1/model"), ("POST", "/")]:
            response = client.request(method, path, json=SANTANA)
            assert_error(
                response, 429, "too many requests from testclient: the limit is 3/minute; retry"
            )
            assert 1 <= int(response.headers["retry-after"]) <= 60
        # Probes and scrapes are never limited; another client has its own count.
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        limited = [
            float(line.rsplit(" ", 1)[1])
            for line in client.get("/metrics").text.splitlines()
            if line.startswith("imovsp_http_requests_total{")
            and 'route="<rate-limited>",status="429"' in line
        ]
        assert sum(limited) == 3
    with TestClient(client.app, client=("10.0.0.2", 5000)) as other:
        assert other.post("/v1/valuations", json=SANTANA).status_code == 200


def test_rate_limit_is_off_by_default(client: TestClient) -> None:
    assert Settings().rate_limit is None
    statuses = {client.get("/v1/districts").status_code for _ in range(50)}
    assert statuses == {200}


def test_a_malformed_rate_limit_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match=r"'fast' is not a rate limit: write e\.g\. 100/minute"):
        Settings(rate_limit="fast")
