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
from imovsp.api import create_app
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


def api(base: str, body: dict[str, Any]) -> dict[str, Any]:
    """What the API answers for the body the page should send."""
    request = urllib.request.Request(
        f"{base}/v1/valuations?{OPTIONS}",
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
