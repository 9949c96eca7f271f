"""The web page as a person uses it: a real headless Chromium (Debian's) against a real uvicorn
serving the session's synthetic model. Screenshots of each state go to test-artifacts/web/."""

from __future__ import annotations

import json
import re
import shutil
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, Request, Route, expect, sync_playwright

from everything import unavailable
from imovsp.geo import geography
from imovsp.server import create_app
from imovsp.settings import Settings
from imovsp.valuer import Valuer
from imovsp.web.brl import brl, number

CHROMIUM = shutil.which("chromium")
if CHROMIUM is None:
    unavailable("Debian's chromium is not installed (apt-get install chromium)", module=True)

# A busy machine can take more than the default 5 s to render a page: wait on what it shows.
expect.set_options(timeout=15_000)

SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "web"
# As a root process on a closed network: no sandbox, no background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
OPTIONS = "explain=true&comparables=5&level=0.8"
SERVER_DOWN = "Desculpe, não conseguimos calcular agora."
BRL = re.compile(r"^R\$\xa0\d{1,3}(\.\d{3})*$")  # a no-break space keeps "R$" with its number


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def base(valuer: Valuer, models_dir: Path) -> Iterator[str]:
    """A real uvicorn, in a thread of this process, serving the app on the synthetic model."""
    app = create_app(Settings(models_dir=models_dir), valuer=valuer)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive(), "uvicorn stopped while starting"
        assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def open_page(
    browser: Browser, base: str, *, width: int = 1280, height: int = 900
) -> tuple[Page, list[str]]:
    """A fresh page on ``base``, and the list it fills with requests that left the app and
    JavaScript errors (both must stay empty)."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="pt-BR")
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []

    def request(r: Request) -> None:
        if not r.url.startswith((base, "data:")):
            problems.append(f"fetched from outside the app: {r.url}")

    page.on("request", request)
    page.on("pageerror", lambda e: problems.append(f"JavaScript error: {e}"))
    page.goto(f"{base}/")
    return page, problems


@pytest.fixture
def page(browser: Browser, base: str) -> Iterator[Page]:
    page, problems = open_page(browser, base)
    yield page
    page.context.close()
    assert problems == []


def api(base: str, body: dict[str, Any], more: str = "") -> dict[str, Any]:
    """What the API answers for the body the page should send (``more``: other options)."""
    request = urllib.request.Request(
        f"{base}/v1/valuations?{OPTIONS}{more}",
        json.dumps(body).encode(),
        {"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as r:
        return dict(json.loads(r.read()))


# WCAG contrast of every visible piece of HTML text against the background it sits on.
CONTRAST_JS = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] === 1) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const el of document.querySelectorAll("body *:not(svg):not(svg *)")) {
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const style = getComputedStyle(el);
    if (style.visibility === "hidden" || style.opacity === "0") continue;
    const [a, b] = [lum(rgb(style.color)), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${el.tagName}#${el.id}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


def low_contrast(page: Page) -> list[str]:
    return list(page.evaluate(CONTRAST_JS))


def shot(page: Page, name: str) -> None:
    page.screenshot(path=SHOTS / f"{name}.png", full_page=True)


def submit(page: Page) -> None:
    page.get_by_role("button", name="Calcular").click()


# -- the answer ------------------------------------------------------------------------------------


def test_form_values_a_sale_and_a_rent_with_range_reasons_and_comparables(
    page: Page, base: str
) -> None:
    unlabelled = page.evaluate(
        "[...document.querySelectorAll('input, select, button')]"
        ".filter(e => !(e.labels && e.labels.length) && !e.textContent.trim()).map(e => e.id)"
    )
    assert unlabelled == []
    shot(page, "01-form")
    page.get_by_label("Bairro").fill("Santana")
    page.get_by_label("Área útil (m²)").fill("130")
    page.get_by_label("Quartos").fill("4")
    page.get_by_label("Área útil (m²)").press("Enter")  # the keyboard submits
    result = page.locator("#result")
    expect(result).to_be_visible()
    expected = api(base, {"negotiation": "sale", "district": "Santana", "size_m2": 130, "rooms": 4})

    price = page.locator("#price").inner_text()
    assert price == brl(expected["price"])
    assert BRL.match(price), price
    expect(page.locator("#per-month")).to_have_text("")
    low, high = brl(expected["price_low"]), brl(expected["price_high"])
    expect(page.locator("#range-text")).to_contain_text(f"de {low} a {high}")
    expect(page.locator("#range-low")).to_have_text(low)
    expect(page.locator("#range-estimate")).to_have_text(price)
    left = page.locator("#range-marker").evaluate("e => parseFloat(e.style.left)")
    share = (expected["price"] - expected["price_low"]) / (
        expected["price_high"] - expected["price_low"]
    )
    assert left == pytest.approx(100 * share, abs=0.1)
    median = expected["district_median_price_m2"]
    expect(page.locator("#per-m2")).to_contain_text(f"mediana de Santana ({brl(median)}/m²)")

    reasons = page.locator("#reasons li")
    expect(reasons).to_have_count(min(5, len(expected["reasons"])))
    first = expected["reasons"][0]
    pct = first["effect_pct"]
    shown = f"{'+' if pct >= 0 else '−'}{number(abs(pct), 1 if abs(pct) < 1 else 0)}%"
    assert reasons.first.inner_text().endswith(f": {shown}")
    if any(r["feature"] == "size_m2" for r in expected["reasons"][:5]):
        expect(page.locator("#reasons")).to_contain_text("Área de 130 m²: ")
    # Only district, size and rooms were given: the page says what the model did not know
    # and what is usual for the size (test_hints_... checks what would narrow the range).
    expect(page.locator("#defaulted")).to_contain_text("Avaliado sem banheiros, suítes, vagas")
    expect(page.locator("#defaulted")).to_contain_text("localização exata: o modelo considera")
    expect(page.locator("#defaulted")).to_contain_text("Para essa área, o comum é")
    rows = page.locator("#comparables tbody tr")
    expect(rows).to_have_count(5)
    assert low_contrast(page) == []
    assert rows.first.locator("td").nth(4).inner_text() == brl(expected["comparables"][0]["price"])
    shot(page, "02-result-sale")

    page.locator("#negotiation-sale").focus()
    page.keyboard.press("ArrowRight")  # the radio group, by keyboard
    expect(page.locator("#negotiation-rent")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("#per-month")).to_have_text("/mês")
    rent = api(base, {"negotiation": "rent", "district": "Santana", "size_m2": 130, "rooms": 4})
    expect(page.locator("#price")).to_have_text(brl(rent["price"]))
    expect(page.locator("#result-title")).to_have_text("Aluguel estimado")
    shot(page, "03-result-rent")


def test_hints_say_which_fields_narrow_the_range_and_the_form_marks_them(
    page: Page, base: str
) -> None:
    body = {"negotiation": "sale", "district": "Santana", "size_m2": 130, "rooms": 4}
    answer = api(base, body)
    # The hints depend on the model's data; the page's part is to say them and mark the fields,
    # so it is given an answer with known ones.
    hints = [
        {"fields": ["location"], "width_pct": 24.0, "message": "give location: ±12%"},
        {"fields": ["toilets", "suites"], "width_pct": 31.0, "message": "give toilets, suites"},
    ]
    crafted = json.dumps({**answer, "width_pct": 40.0, "sharpen": hints})
    page.route(
        "**/v1/valuations*",
        lambda route: route.fulfill(status=200, content_type="application/json", body=crafted),
    )
    page.get_by_label("Bairro").fill("Santana")
    page.get_by_label("Área útil (m²)").fill("130")
    page.get_by_label("Quartos").fill("4")
    submit(page)
    expect(page.locator("#sharpen")).to_have_text(
        "Para estreitar a faixa, informe: localização exata (±12% em vez de ±20%); "
        "banheiros, suítes (±16% em vez de ±20%)."
    )
    marked = re.compile(r"\bsharpen\b")
    for where in ("#location", "#field-toilets", "#field-suites"):
        expect(page.locator(where)).to_have_class(marked)
    for where in ("#field-rooms", "#field-parking", "#field-condo_fee"):
        expect(page.locator(where)).not_to_have_class(marked)
    assert low_contrast(page) == []
    shot(page, "02b-sharpen-hints")
    # A complete description has nothing to add: the hint and the marks go.
    page.unroute("**/v1/valuations*")
    complete = json.dumps({**answer, "sharpen": []})
    page.route(
        "**/v1/valuations*",
        lambda route: route.fulfill(status=200, content_type="application/json", body=complete),
    )
    submit(page)
    expect(page.locator("#sharpen")).to_have_text("")
    expect(page.locator("#location")).not_to_have_class(marked)


def test_estimate_is_in_the_latest_month_with_the_2019_figure_beside_and_another_month_chosen(
    page: Page, base: str
) -> None:
    sale = {"negotiation": "sale", "district": "Santana", "size_m2": 130}
    page.get_by_label("Bairro").fill("Santana")
    page.get_by_label("Área útil (m²)").fill("130")
    submit(page)
    expected = api(base, sale)
    expect(page.locator("#price")).to_have_text(brl(expected["price"]))
    expect(page.locator("#as-of")).to_have_text(
        "Valor de agosto de 2025, corrigido pelo Índice FipeZAP desde abril de 2019."
    )
    expect(page.locator("#data-month-price")).to_contain_text(
        f"Em abril de 2019, mês dos anúncios do modelo: {brl(expected['price_at_data_month'])}"
    )
    expect(page.locator("#data-month-price")).to_contain_text("fonte: Índice FipeZAP (FIPE)")
    expect(page.locator("#comparables-note")).to_have_text(
        "Preços anunciados em abril de 2019, corrigidos para agosto de 2025 pelo mesmo índice."
    )
    assert expected["price"] > expected["price_at_data_month"]
    shot(page, "04-result-as-of")

    months = page.locator("#as_of")
    expect(months.locator("option").first).to_have_text("agosto de 2025 (o mais recente)")
    months.select_option("2021-03")
    submit(page)
    march = api(base, sale, "&as_of=2021-03")
    expect(page.locator("#price")).to_have_text(brl(march["price"]))
    expect(page.locator("#as-of")).to_contain_text("Valor de março de 2021, corrigido")
    expect(page.locator("#range-low")).to_have_text(brl(march["price_low"]))

    # Rents' index ends a month earlier: the list follows the negotiation type.
    page.locator("#negotiation-rent").check()
    expect(months.locator("option").first).to_have_text("julho de 2025 (o mais recente)")
    expect(months).to_have_value("2021-03")  # still offered for rents
    months.select_option("2019-04")
    submit(page)
    expect(page.locator("#as-of")).to_have_text(
        "Valor de abril de 2019, mês dos anúncios do modelo."
    )
    expect(page.locator("#data-month-price")).to_have_text("")
    assert low_contrast(page) == []


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "typed", "message"),
    [
        ("size_m2", "5", "A área deve estar entre 10 e 2.000 m²."),
        ("size_m2", "grande", "Digite só números, por exemplo 72 ou 72,5."),
        ("rooms", "2,5", "Use um número inteiro, sem vírgula."),
        ("condo_fee", "-10", f"O condomínio deve estar entre {brl(0)} e {brl(100_000)}."),
    ],
    ids=["size-too-small", "size-not-a-number", "rooms-fraction", "condo-negative"],
)
def test_invalid_field_shows_a_portuguese_message_next_to_it(
    page: Page, field: str, typed: str, message: str
) -> None:
    page.locator(f"#{field}").fill(typed)
    submit(page)
    error = page.locator(f"#field-{field} .error")  # inside the field's own block
    expect(error).to_have_text(message)
    expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.locator(f"#{field}")).to_be_focused()
    expect(page.locator(f"#{field}")).to_have_value(typed)
    expect(page.locator("#result")).to_be_hidden()
    expect(page.locator(".error:not(:empty)")).to_have_count(1)
    if typed == "5":
        assert low_contrast(page) == []
        shot(page, "04-invalid-size")


def test_unknown_district_offers_the_closest_names(page: Page) -> None:
    page.get_by_label("Bairro").fill("Santanna")
    submit(page)
    error = page.locator("#field-district .error")
    expect(error).to_contain_text("Não conhecemos o bairro “Santanna”. Você quis dizer:")
    suggestion = error.get_by_role("button", name="Santana", exact=True)
    expect(suggestion).to_be_visible()
    shot(page, "05-unknown-district")
    suggestion.click()  # fills the name in and values it
    expect(page.locator("#result")).to_be_visible()
    expect(page.get_by_label("Bairro")).to_have_value("Santana")
    expect(page.locator("#map path.selected")).to_have_attribute("data-district", "Santana")
    expect(error).to_be_empty()


def test_server_failure_is_polite_and_keeps_what_was_typed(page: Page) -> None:
    typed = {"district": "Moema", "size_m2": "85,5", "rooms": "3", "condo_fee": "1.200"}
    for field, value in typed.items():
        page.locator(f"#{field}").fill(value)
    page.get_by_label("Elevador").select_option("true")

    def fail(route: Route) -> None:
        route.fulfill(status=500, content_type="application/json", body='{"detail": "boom"}')

    page.route("**/v1/valuations*", fail)
    submit(page)
    status = page.locator("#form-status")
    expect(status).to_contain_text(SERVER_DOWN)
    expect(status).to_contain_text("o que você digitou continua no formulário")
    assert low_contrast(page) == []
    shot(page, "06-server-failure")
    page.unroute("**/v1/valuations*")
    page.route(
        "**/v1/valuations*",
        lambda route: route.fulfill(status=429, content_type="application/json", body="{}"),
    )
    submit(page)
    expect(status).to_have_text(
        "Muitos pedidos em pouco tempo. Espere alguns segundos e tente de novo."
    )
    page.unroute("**/v1/valuations*")
    page.route("**/v1/valuations*", lambda route: route.abort("connectionrefused"))
    submit(page)
    expect(page.get_by_role("button", name="Calcular")).to_be_enabled()
    expect(status).to_contain_text(SERVER_DOWN)
    expect(page.locator("#result")).to_be_hidden()
    for field, value in typed.items():
        expect(page.locator(f"#{field}")).to_have_value(value)
    expect(page.get_by_label("Elevador")).to_have_value("true")

    page.unroute("**/v1/valuations*")  # the server is back: the same form values
    submit(page)
    expect(page.locator("#summary")).to_have_text("Venda · Moema · 85,5 m²")
    expect(status).to_be_empty()
    expect(page.locator("#defaulted")).not_to_contain_text("elevador")  # it was given
    expect(page.locator("#defaulted")).not_to_contain_text("condomínio")  # 1.200 was read


# -- the district chart ---------------------------------------------------------------------------


def test_district_chart_draws_every_district_for_sale_and_rent(page: Page, base: str) -> None:
    page.get_by_role("link", name="Preço por m² por bairro").click()
    with urllib.request.urlopen(f"{base}/v1/districts", timeout=30) as r:
        rows = json.loads(r.read())["districts"]
    for negotiation in ("sale", "rent"):
        chart = page.locator(f"svg[data-negotiation={negotiation}]")
        expect(chart).to_be_visible()
        priced = [d for d in rows if d["median_price_m2"][negotiation] is not None]
        expect(chart.locator(".bar")).to_have_count(len(priced))
        top = max(priced, key=lambda d: d["median_price_m2"][negotiation])
        expect(chart.locator(".bar .name").first).to_have_text(top["name"])
    shot(page, "07-district-chart")
    page.goto(f"{base}/bairros?bairro=santana")
    expect(page.locator("svg[data-negotiation=sale] .bar.highlighted .name")).to_have_text(
        "Santana"
    )


# -- a phone ---------------------------------------------------------------------------------------


def test_phone_width_fits_without_sideways_scrolling(browser: Browser, base: str) -> None:
    page, problems = open_page(browser, base, width=390, height=844)
    try:
        submit(page)  # the defaults give an answer in one tap
        expect(page.locator("#result")).to_be_visible()
        expect(page.locator("#comparables tbody tr")).to_have_count(5)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        box = page.locator("#result").bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390
        shot(page, "08-phone")
        page.goto(f"{base}/bairros")
        expect(page.locator("svg[data-negotiation=rent]")).to_be_visible()
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "09-phone-chart")
    finally:
        page.context.close()
    assert problems == []


# -- the city's map --------------------------------------------------------------------------------

M_BOI_MIRIM = (-23.7050, -46.7750)  # in Jardim Ângela, ~25 km south-west of the centre
PARELHEIROS = (-23.8300, -46.7200)  # a district without listings
LARGO_DA_BATATA = (-23.5668, -46.6932)  # in Pinheiros

# Where on the screen a latitude and longitude are drawn (the map's own projection).
SCREEN_JS = """([la, lo]) => {
  const svg = document.getElementById("map");
  const c = JSON.parse(document.getElementById("page-config").textContent).map;
  const p = new DOMPoint((lo - c.lon0) * c.kx, (c.lat0 - la) * c.ky)
    .matrixTransform(svg.getScreenCTM());
  return [p.x, p.y];
}"""


def on_screen(page: Page, lat: float, lon: float) -> tuple[float, float]:
    page.locator("#map").scroll_into_view_if_needed()
    x, y = page.evaluate(SCREEN_JS, [lat, lon])
    return float(x), float(y)


def click_map(page: Page, lat: float, lon: float) -> None:
    page.mouse.click(*on_screen(page, lat, lon))


def coordinate(page: Page, field: str) -> float:
    return float(page.locator(f"#{field}").input_value().replace("−", "-").replace(",", "."))


def test_map_draws_the_96_official_districts_with_their_names(page: Page) -> None:
    districts = page.locator("#map path.district")
    expect(districts).to_have_count(96)
    jardim = page.locator('#map path[data-district="Jardim Ângela"]')
    expect(jardim).to_have_attribute("data-model", "Jardim Ângela")
    expect(jardim.locator("title")).to_have_text("Jardim Ângela")
    box = page.locator("#map").bounding_box()
    assert box is not None
    assert box["height"] > 300  # drawn, and large enough to point at
    jardim.hover()
    expect(page.locator("#map-label")).to_have_text("Jardim Ângela")
    # The default district is lit up, and is where the keyboard enters the map.
    expect(page.locator("#map path.selected")).to_have_attribute("data-district", "Pinheiros")
    expect(page.locator('#map path[tabindex="0"]')).to_have_attribute("data-district", "Pinheiros")


def test_click_on_the_map_marks_the_point_picks_its_district_and_sends_the_coordinates(
    page: Page,
) -> None:
    expect(page.locator("#map-marker")).to_have_class(re.compile(r"\boff\b"))
    click_map(page, *M_BOI_MIRIM)
    expect(page.get_by_label("Bairro")).to_have_value("Jardim Ângela")
    expect(page.locator("#map-status")).to_have_text(
        re.compile(r"^Ponto marcado em Jardim Ângela \(−23,7\d{4}; −46,7\d{4}\)\.$")
    )
    expect(page.locator("#map-marker")).not_to_have_class(re.compile(r"\boff\b"))
    expect(page.locator("#map path.selected")).to_have_attribute("data-district", "Jardim Ângela")
    lat, lon = coordinate(page, "latitude"), coordinate(page, "longitude")
    # A pixel of this map is ~100 m: the point sent is where the click was.
    assert lat == pytest.approx(M_BOI_MIRIM[0], abs=0.002)
    assert lon == pytest.approx(M_BOI_MIRIM[1], abs=0.002)
    shot(page, "10-map-marked")

    with page.expect_response("**/v1/valuations*") as answered:
        submit(page)
    sent = json.loads(answered.value.request.post_data or "{}")
    assert sent["district"] == "Jardim Ângela"
    assert (sent["latitude"], sent["longitude"]) == (lat, lon)
    answer = answered.value.json()
    assert answer["location_estimated"] is False
    assert answer["notes"] == []  # the point is in the district named
    assert geography().district_at(lat, lon).name == "Jardim Ângela"  # type: ignore[union-attr]
    expect(page.locator("#result")).to_be_visible()
    expect(page.locator("#summary")).to_contain_text("Jardim Ângela")
    assert low_contrast(page) == []
    shot(page, "11-map-result")


def test_point_in_a_district_without_listings_picks_the_nearest_and_says_so(page: Page) -> None:
    nearest = page.locator('#map path[data-district="Parelheiros"]').get_attribute("data-nearest")
    assert nearest
    click_map(page, *PARELHEIROS)
    expect(page.get_by_label("Bairro")).to_have_value(nearest)
    expect(page.locator("#map-status")).to_have_text(
        re.compile(
            r"^Ponto marcado em Parelheiros \(−23,8\d{4}; −46,7\d{4}\), distrito sem anúncios "
            r"nos nossos dados: o bairro da avaliação é o mais próximo com anúncios, "
            f"{nearest}, com a localização do ponto\\.$"
        )
    )
    assert coordinate(page, "latitude") == pytest.approx(PARELHEIROS[0], abs=0.002)
    shot(page, "12-map-no-listings")
    # Beside the city, inside the map's frame: nothing is marked.
    page.get_by_role("button", name="Remover o ponto").click()
    expect(page.locator("#latitude")).to_have_value("")
    box = page.locator("#map").bounding_box()
    assert box is not None
    corner = {"x": box["width"] - 3, "y": 3}  # the north-east corner
    page.locator("#map").click(position=corner)
    expect(page.locator("#map-status")).to_contain_text("fora da cidade de São Paulo")
    expect(page.locator("#latitude")).to_have_value("")


def test_choosing_in_the_list_lights_the_district_up_and_drops_a_point_outside_it(
    page: Page,
) -> None:
    click_map(page, *M_BOI_MIRIM)
    expect(page.get_by_label("Bairro")).to_have_value("Jardim Ângela")
    page.get_by_label("Bairro").fill("santana")
    page.get_by_label("Bairro").press("Tab")  # the choice is made
    expect(page.locator("#map path.selected")).to_have_attribute("data-district", "Santana")
    expect(page.locator("#latitude")).to_have_value("")
    expect(page.locator("#longitude")).to_have_value("")
    expect(page.locator("#map-marker")).to_have_class(re.compile(r"\boff\b"))
    expect(page.locator("#map-status")).to_have_text(
        "O ponto marcado ficava fora de Santana e foi removido."
    )
    # A neighbourhood of the listings lights up the official districts it lies in.
    page.get_by_label("Bairro").fill("Brooklin")
    selected = page.locator("#map path.selected")
    expect(selected).to_have_count(3)
    assert sorted(selected.evaluate_all("ps => ps.map(p => p.dataset.district)")) == [
        "Campo Belo",
        "Itaim Bibi",
        "Santo Amaro",
    ]
    # A point inside the chosen district stays.
    click_map(page, -23.62, -46.67)  # Campo Belo
    page.get_by_label("Bairro").fill("Campo Belo")
    page.get_by_label("Bairro").press("Tab")
    expect(page.locator("#latitude")).not_to_have_value("")


def test_typed_coordinates_move_the_mark_and_pick_the_district(page: Page) -> None:
    page.locator("#location summary").click()
    page.get_by_label("Bairro").fill("Santana")
    page.get_by_label("Latitude").fill("-23,5668")
    page.get_by_label("Longitude").fill("-46,6932")
    page.get_by_label("Longitude").press("Tab")
    expect(page.get_by_label("Bairro")).to_have_value("Pinheiros")
    expect(page.locator("#map-marker")).not_to_have_class(re.compile(r"\boff\b"))
    transform = page.locator("#map-marker").get_attribute("transform") or ""
    x, y = (float(v) for v in re.findall(r"-?\d+\.?\d*", transform))
    inside = page.locator('#map path[data-district="Pinheiros"]').evaluate(
        "(p, [x, y]) => p.isPointInFill(new DOMPoint(x, y))", [x, y]
    )
    assert inside is True


def test_keyboard_walks_the_map_and_picks_a_district(page: Page) -> None:
    page.get_by_label("Bairro").focus()
    page.keyboard.press("Tab")  # from the list to the map: the chosen district
    focused = page.locator("#map path:focus")
    expect(focused).to_have_attribute("data-district", "Pinheiros")
    expect(page.locator("#map-label")).to_have_text("Pinheiros")
    page.keyboard.press("ArrowRight")  # the next district in alphabetical order
    expect(page.locator("#map path:focus")).to_have_attribute("data-district", "Pirituba")
    expect(page.locator("#map-label")).to_have_text("Pirituba")
    shot(page, "13-map-keyboard")
    page.keyboard.press("Enter")
    expect(page.get_by_label("Bairro")).to_have_value("Pirituba")
    expect(page.locator("#map-status")).to_have_text("Escolhido: Pirituba.")
    expect(page.locator("#latitude")).to_have_value("")  # a district is not a point
    page.get_by_role("button", name="Calcular").click()
    expect(page.locator("#summary")).to_contain_text("Pirituba")


def test_phone_taps_the_map_without_sideways_scrolling(browser: Browser, base: str) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale="pt-BR", has_touch=True, is_mobile=True
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"JavaScript error: {e}"))
    try:
        page.goto(f"{base}/")
        box = page.locator("#map").bounding_box()
        assert box is not None
        assert box["x"] >= 0
        assert box["x"] + box["width"] <= 390  # the map scales to the phone
        page.touchscreen.tap(*on_screen(page, *M_BOI_MIRIM))
        expect(page.get_by_label("Bairro")).to_have_value("Jardim Ângela")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        shot(page, "14-phone-map")
    finally:
        context.close()


def test_api_docs_work_offline_with_every_file_from_the_app(browser: Browser, base: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []

    def offline(route: Route) -> None:  # nothing beyond the app answers, as on a closed network
        if route.request.url.startswith((base, "data:")):
            route.continue_()
        else:
            problems.append(f"fetched from outside the app: {route.request.url}")
            route.abort("internetdisconnected")

    page.route("**/*", offline)
    page.on("pageerror", lambda e: problems.append(f"JavaScript error: {e}"))
    # A Content-Security-Policy violation is reported on the console.
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{base}/docs")
        operation = page.locator(".opblock-get", has_text="/healthz")
        expect(operation).to_be_visible()
        expect(page.locator(".opblock-post", has_text="/v1/valuations").first).to_be_visible()
        # Try it out: the page sends the request to the app and shows its answer.
        operation.locator(".opblock-summary").click()
        operation.get_by_role("button", name="Try it out").click()
        operation.get_by_role("button", name="Execute").click()
        expect(
            operation.locator(".live-responses-table td.response-col_status:not(.col_header)")
        ).to_have_text("200")
        shot(page, "10-api-docs")
    finally:
        context.close()
    assert problems == []
