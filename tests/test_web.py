"""The web page's server side: what ``GET /`` and ``GET /bairros`` send, the static files, the
Portuguese words for every API field, BRL formatting and the chart's geometry. (The page at
work in a browser is in test_web_browser.py.)"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from imovsp.api.legacy import ANSWER_KEY, EXAMPLE
from imovsp.api.schemas import PropertyIn
from imovsp.server import create_app
from imovsp.settings import Settings
from imovsp.valuer import Valuer
from imovsp.web.brl import brl, number, price_m2
from imovsp.web.chart import bar_chart, nice_step, sort_key
from imovsp.web.pages import TEXTS, page_config

EXTERNAL = re.compile(r"""(?:src|href|action)\s*=\s*["']?(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(models_dir=models_dir))) as c:
        yield c


def test_get_root_is_the_page_in_portuguese_listing_every_known_district(
    client: TestClient, valuer: Valuer
) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = response.text
    assert '<html lang="pt-BR">' in html
    assert "Quanto vale este apartamento?" in html
    for name in valuer.builder.districts_:
        assert f'<option value="{name}">' in html
    assert 'name="district" list="district-list" value="Pinheiros"' in html  # one-click answer


def test_post_root_still_answers_the_old_deployments_request(client: TestClient) -> None:
    response = client.post("/", json=EXAMPLE)
    assert response.status_code == 200, response.text
    assert response.json()[ANSWER_KEY] > 0


@pytest.mark.parametrize("path", ["/", "/bairros"])
def test_pages_load_nothing_from_outside_the_app(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "script-src 'self'" in csp
    assert "connect-src 'self'" in csp
    assert EXTERNAL.search(response.text) is None
    assert "<script>" not in response.text  # no inline script: the policy would block it


def test_static_files_come_from_the_package(client: TestClient) -> None:
    script = client.get("/static/app.js")
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert "fetch(`v1/valuations?${query}`" in script.text
    assert client.get("/static/style.css").headers["content-type"].startswith("text/css")
    missing = client.get("/static/nope.js")
    assert missing.status_code == 404
    assert "GET /static/nope.js" in missing.json()["detail"]


def test_pages_are_documented_as_html(client: TestClient) -> None:
    # Documented, so that the fuzzing of the OpenAPI document (tests/test_fuzz.py) does not
    # take GET / for an undeclared method that should answer 405.
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/", "/bairros"):
        assert "text/html" in paths[path]["get"]["responses"]["200"]["content"]
    assert "post" in paths["/"]  # the old deployment's endpoint stays beside the page


def test_every_api_field_has_portuguese_words_and_its_bounds() -> None:
    assert set(TEXTS) == set(PropertyIn.model_fields)
    fields = page_config()["fields"]
    assert fields["size_m2"] == {"phrase": "a área", "allowed": "entre 10 e 2.000 m²"}
    assert fields["condo_fee"]["allowed"] == "entre R$\xa00 e R$\xa0100.000"
    assert fields["rooms"]["allowed"] == "entre 0 e 20"
    assert fields["district"]["allowed"] is None


def test_brl_is_written_as_brazilians_read_it() -> None:
    assert brl(1_234_567) == "R$\xa01.234.567"
    assert brl(816_000.4) == "R$\xa0816.000"
    assert brl(0) == "R$\xa00"
    assert number(35.4, 2) == "35,40"
    assert number(-23.5614, 4) == "-23,5614"
    assert price_m2(6279.87, "sale") == "R$\xa06.280"
    assert price_m2(68.2, "rent") == "R$\xa068,20"


def test_district_chart_highlights_a_district_however_it_is_written(client: TestClient) -> None:
    html = client.get("/bairros", params={"bairro": "SANTANA"}).text
    assert html.count('class="bar highlighted"') == 2  # in the sale and the rent chart
    assert 'Em destaque: <a href="#santana">Santana</a>' in html
    unknown = client.get("/bairros", params={"bairro": "Atlantis"})
    assert unknown.status_code == 200
    assert "highlighted" not in unknown.text


def test_district_chart_refuses_an_overlong_name(client: TestClient) -> None:
    response = client.get("/bairros", params={"bairro": "x" * 81})
    assert response.status_code == 422
    assert "bairro: String should have at most 80 characters" in response.json()["detail"]


def test_bar_chart_sorts_scales_and_lists_districts_without_listings() -> None:
    rows = [
        {"name": "Água Rasa", "median_price_m2": {"sale": 5000.0, "rent": None}},
        {"name": "Moema", "median_price_m2": {"sale": 13000.0, "rent": 57.2}},
        {"name": "Brás", "median_price_m2": {"sale": 6500.0, "rent": 37.1}},
    ]
    chart = bar_chart(rows, "sale", highlight="Brás")
    assert [b.name for b in chart.bars] == ["Moema", "Brás", "Água Rasa"]
    assert [b.label for b in chart.bars] == ["R$\xa013.000", "R$\xa06.500", "R$\xa05.000"]
    assert chart.bars[0].width / chart.bars[2].width == pytest.approx(13000 / 5000, rel=0.01)
    assert [b.highlighted for b in chart.bars] == [False, True, False]
    assert [t.label for t in chart.ticks if t.label] == ["0", "5 mil", "10 mil", "15 mil"]
    rent = bar_chart(rows, "rent")
    assert [b.label for b in rent.bars] == ["R$\xa057,20", "R$\xa037,10"]
    assert rent.missing == ["Água Rasa"]


def test_nice_steps_and_accent_blind_order() -> None:
    assert [nice_step(top) for top in (20695, 96.7, 9.9, 1)] == [5000, 20, 2, 0.2]
    names = ["Vila Mariana", "Água Rasa", "Belém", "Aricanduva"]
    assert sorted(names, key=sort_key) == ["Água Rasa", "Aricanduva", "Belém", "Vila Mariana"]


def test_a_wrong_method_on_the_shared_root_names_both_methods(client: TestClient) -> None:
    response = client.delete("/")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["detail"] == "method DELETE is not allowed on /; use GET, POST"
