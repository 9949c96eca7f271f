"""``GET /``: the valuation form; ``GET /bairros``: the price per m² by district. In Portuguese.

The server renders the form with the districts the served model knows and the field bounds of
:class:`~imovsp.api.schemas.PropertyIn`; the browser then values through ``POST /v1/valuations``
(``static/app.js``). So the page shows exactly what the API answers, its errors are the API's
(named by field, put into Portuguese here), and a failed request leaves the form as typed.
The chart is SVG drawn here from ``GET /v1/districts``'s numbers: the page fetches nothing from
outside the app, and its Content-Security-Policy says so to the browser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, cast

import annotated_types
from fastapi import APIRouter, FastAPI, Query, Request
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

from imovsp.api.dating import price_index
from imovsp.api.deps import ValuerDep
from imovsp.api.routes import districts
from imovsp.api.schemas import PropertyIn
from imovsp.bounds import DEFAULT_LEVEL
from imovsp.features import FLAGS
from imovsp.price_index import CREDIT, PriceIndex, month_pt
from imovsp.web.brl import brl, number, price_m2
from imovsp.web.chart import bar_chart, slug, sort_key
from imovsp.web.citymap import city_map, map_config

router = APIRouter(tags=["web page"])
templates = Environment(
    loader=PackageLoader("imovsp.web", "templates"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
# Nothing but this app: no CDN, fonts, tiles or inline scripts.
CSP = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    )
)
COMPARABLES = 5  # similar listings shown under an estimate
DEFAULT_DISTRICT = "Pinheiros"
DEFAULT_SIZE = 70


@dataclass(frozen=True, slots=True)
class FieldText:
    """How the page names a field of :class:`PropertyIn`."""

    label: str  # the control's label
    phrase: str  # inside a sentence: "Informe a área."
    unit: str = ""  # after a number: " m²"
    money: bool = False


TEXTS = {
    "negotiation": FieldText("Você quer", "comprar ou alugar"),
    "district": FieldText("Bairro", "o bairro"),
    "size_m2": FieldText("Área útil (m²)", "a área", " m²"),
    "rooms": FieldText("Quartos", "o número de quartos"),
    "toilets": FieldText("Banheiros", "o número de banheiros"),
    "suites": FieldText("Suítes", "o número de suítes"),
    "parking": FieldText("Vagas", "o número de vagas"),
    "condo_fee": FieldText("Condomínio (R$/mês)", "o condomínio", money=True),
    "elevator": FieldText("Elevador", "se tem elevador"),
    "furnished": FieldText("Mobiliado", "se é mobiliado"),
    "swimming_pool": FieldText("Piscina", "se tem piscina"),
    "new": FieldText("Lançamento", "se é lançamento"),
    "latitude": FieldText("Latitude", "a latitude"),
    "longitude": FieldText("Longitude", "a longitude"),
}
COUNTS = ("rooms", "toilets", "suites", "parking")


def bounds(name: str) -> tuple[float | None, float | None]:
    """The lowest and highest value the API accepts for a field."""
    low = high = None
    for rule in PropertyIn.model_fields[name].metadata:
        if isinstance(rule, annotated_types.Ge):
            low = cast(float, rule.ge)
        elif isinstance(rule, annotated_types.Le):
            high = cast(float, rule.le)
    return low, high


def allowed(name: str) -> str | None:
    """``entre 10 e 2.000 m²``: the bounds as an error message states them."""
    low, high = bounds(name)
    if low is None or high is None:
        return None
    text = TEXTS[name]
    if text.money:
        return f"entre {brl(low)} e {brl(high)}"
    return f"entre {number(low)} e {number(high)}{text.unit}"


def page_config() -> dict[str, Any]:
    """What ``app.js`` needs to know: the API's options and each field's words and bounds."""
    fields = {
        name: {"phrase": text.phrase, "allowed": allowed(name)} for name, text in TEXTS.items()
    }
    return {"comparables": COMPARABLES, "level": DEFAULT_LEVEL, "fields": fields}


def months_config(index: PriceIndex, data_month: str) -> dict[str, Any]:
    """The months a person can ask for, newest first, with their names in Portuguese, per
    negotiation type; and the model's own month."""
    return {
        "months": {
            n: [[m, month_pt(m)] for m in reversed(index.months(n))] for n in ("sale", "rent")
        },
        "data_month": [data_month, month_pt(data_month)],
        "index_credit": CREDIT,
    }


def render(template: str, **context: Any) -> HTMLResponse:
    html = templates.get_template(template).render(**context)
    return HTMLResponse(html, headers={"Content-Security-Policy": CSP})


@router.get("/", response_class=HTMLResponse, summary="The valuation page")
async def valuation_page(valuer: ValuerDep, request: Request) -> HTMLResponse:
    """The form that values an apartment (``POST /`` stays the old API's)."""
    names = sorted(valuer.districts, key=sort_key)
    months = months_config(price_index(request), valuer.data_month)
    city = city_map(frozenset(names))
    return render(
        "index.html",
        districts=names,
        city=city,
        default_district=DEFAULT_DISTRICT if DEFAULT_DISTRICT in names else names[0],
        default_size=DEFAULT_SIZE,
        texts=TEXTS,
        counts=COUNTS,
        flags=FLAGS,
        config={**page_config(), **months, "map": map_config(city)},
        level_pct=round(DEFAULT_LEVEL * 100),
        version=valuer.version,
        data_month=month_pt(valuer.data_month),
        index_credit=CREDIT,
    )


@router.get(
    "/bairros",
    response_class=HTMLResponse,
    responses={
        422: {
            "description": "`bairro` longer than 80 characters.",
            # JSON, as every error of the app (the route's own media type is HTML).
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
        }
    },
    summary="Price per m² by district",
)
async def districts_page(
    valuer: ValuerDep,
    bairro: Annotated[str | None, Query(max_length=80)] = None,
) -> HTMLResponse:
    """Median price per m² by district, for sale and for rent, as SVG bar charts."""
    rows = districts(valuer)["districts"]
    wanted = sort_key(bairro) if bairro else None
    highlight = next((r["name"] for r in rows if sort_key(r["name"]) == wanted), None)
    charts = [bar_chart(rows, n, highlight=highlight) for n in ("sale", "rent")]
    return render(
        "districts.html",
        charts=charts,
        rows=sorted(rows, key=lambda r: sort_key(r["name"])),
        highlight=highlight,
        slug=slug,
        price_m2=price_m2,
        version=valuer.version,
        data_month=month_pt(valuer.data_month),
        index_credit=CREDIT,
    )


def install(app: FastAPI) -> None:
    """Serve the pages and their static files from ``app``."""
    app.include_router(router)
    app.mount("/static", StaticFiles(packages=[("imovsp.web", "static")]), name="static")
