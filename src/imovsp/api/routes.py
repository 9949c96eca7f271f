"""The ``/v1`` endpoints: valuations one by one or in batches, the model card, the districts."""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from typing import Any

import anyio
import orjson
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel
from starlette.responses import Response

from imovsp import data
from imovsp.api import dating, prometheus
from imovsp.api.coalesce import Options
from imovsp.api.deps import SettingsDep, ValuerDep, read_json, read_options, request_id, valuing
from imovsp.api.render import Valuing, valuation_dict
from imovsp.api.schemas import (
    BatchIn,
    BatchOut,
    DistrictsOut,
    ErrorOut,
    ModelCard,
    OptionsIn,
    PropertyIn,
    ValuationOut,
)
from imovsp.as_of import AsOf
from imovsp.features import TYPICAL
from imovsp.monitoring.recorder import Recorder
from imovsp.valuer import Valuation, Valuer

ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorOut, "description": text}
    for status, text in {
        400: "Malformed JSON.",
        413: "Body over the size limit.",
        415: "Body not sent as JSON.",
        422: "Invalid fields, unknown district (with suggestions), coordinates outside the city.",
        429: "Too many requests from this client (with IMOVSP_RATE_LIMIT set); see Retry-After.",
    }.items()
}
router = APIRouter(prefix="/v1", tags=["valuations"])
# The longest a batch waits for room in the prediction log's buffer; then, as for single
# valuations, what does not fit is dropped and counted.
LOG_ROOM_WAIT_SECONDS = 5.0


class JSONBytes(Response):
    """A JSON response from a dict, serialised by orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def documented(body: type[BaseModel]) -> dict[str, Any]:
    """OpenAPI for a route that reads its body and options itself (see :mod:`deps`)."""
    options = OptionsIn.model_json_schema()["properties"]
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": f"#/components/schemas/{body.__name__}"}}
            },
        },
        "parameters": [
            {
                "name": name,
                "in": "query",
                "required": False,
                "description": schema.pop("description"),
                "schema": schema,
            }
            for name, schema in options.items()
        ],
    }


@router.post(
    "/valuations",
    response_model=ValuationOut,
    responses=ERRORS,
    openapi_extra=documented(PropertyIn),
    summary="Value one property",
)
async def create_valuation() -> Response:
    """The price of one apartment (sale price, or monthly rent), with what was assumed."""
    # Declared for the OpenAPI document only: imovsp.server.telemetry.Observe hands every
    # request of this route to imovsp.api.fast_path.value_one before FastAPI's routing (see
    # imovsp.server.app.create_app).
    raise AssertionError("POST /v1/valuations is answered by imovsp.api.fast_path")


def _value_batch(
    valuing: Valuing,
    items: list[PropertyIn],
    options: Options,
    *,
    rid: str,
    recorder: Recorder,
    months: Mapping[str, AsOf | ValueError] | None = None,
) -> dict[str, Any]:
    started = time.perf_counter()
    found = valuing.value_all(items, options)
    if months is not None:  # the items whose type the index has no month for are errors
        found = [
            m if isinstance(m := months.get(item.negotiation), ValueError) else v
            for item, v in zip(items, found, strict=True)
        ]
    valued = [v for v in found if isinstance(v, Valuation)]
    # The items are valued together: each is logged with its share of the time.
    seconds = (time.perf_counter() - started) / max(1, len(valued))
    # Off the event loop, a batch can wait for the log's writer instead of losing records
    # when batches arrive faster than the database takes them.
    recorder.make_room(len(valued), LOG_ROOM_WAIT_SECONDS)
    results: list[dict[str, Any]] = []
    counts = dict.fromkeys(data.NEGOTIATIONS, 0)
    for index, (item, valuation) in enumerate(zip(items, found, strict=True)):
        if isinstance(valuation, ValueError):
            results.append({"index": index, "valuation": None, "error": str(valuation)})
            continue
        counts[valuation.property.negotiation] += 1
        at = None if months is None else months[valuation.property.negotiation]
        if not isinstance(at, AsOf):
            rendered = valuation_dict(valuation, request_id=rid)
            recorder.record("batch", rid, item, valuation, seconds, index)
        else:
            rendered = dating.valuation_body(valuation, at, request_id=rid)
            recorder.record(
                "batch",
                rid,
                item,
                valuation,
                seconds,
                index,
                as_of=at.month,
                index_factor=at.factor,
            )
        results.append({"index": index, "valuation": rendered, "error": None})
    prometheus.record_valuations(counts)
    return {
        "count": len(items),
        "valued": len(valued),
        "errors": len(items) - len(valued),
        "items": results,
        "model_version": valuing.valuer.version,
        "request_id": rid,
    }


@router.post(
    "/valuations/batch",
    response_model=BatchOut,
    responses=ERRORS,
    openapi_extra=documented(BatchIn),
    summary="Value several properties",
)
async def create_batch(request: Request, settings: SettingsDep) -> Response:
    """Value each item; an item the model cannot value gets an `error` instead, in place."""
    batch = await read_json(request, BatchIn)
    n, limit = len(batch.items), settings.batch_max_items
    if n == 0:
        raise HTTPException(422, "items is empty: send at least one property")
    if n > limit:
        raise HTTPException(422, f"items holds {n:,} properties; the limit is {limit:,}")
    served = valuing(request)
    asked = read_options(request)
    options = served.options(asked)
    months = dating.months_for(request, served.valuer, asked.as_of)
    # A large batch takes a while: off the event loop, so other requests keep flowing.
    value = functools.partial(
        _value_batch,
        served,
        batch.items,
        options,
        rid=request_id(request),
        recorder=request.app.state.recorder,
        months=months,
    )
    body = await anyio.to_thread.run_sync(value, limiter=request.app.state.batch_limiter)
    return JSONBytes(body)


def model_card(valuer: Valuer) -> dict[str, Any]:
    meta = valuer.metadata
    typical = []
    for low, high, values in valuer.typical_bands():
        band: dict[str, Any] = {"size_from_m2": low, "size_to_m2": high}
        for name, value in values.items():
            if name == "condo_fee":
                band["condo_fee_per_m2"] = round(float(value), 2)
            elif isinstance(value, bool):
                band[name] = value
            else:
                band[name] = round(value)
        typical.append(band)
    return {
        "version": valuer.version,
        "created_at": meta["created_at"],
        "negotiations": list(valuer.negotiations),
        "target": meta.get("target", ""),
        "data": dict(meta["data"]),
        "metrics": meta.get("metrics", {}),
        "cv": meta.get("cv"),
        "params": meta.get("params", {}),
        "feature_schema": {**meta["feature_schema"], "typical_fields": list(TYPICAL)},
        "typical_by_size": typical,
        "libraries": meta.get("libraries", {}),
        "load_seconds": valuer.load_seconds,
        "data_month": valuer.data_month,
        "price_index": {},  # filled by the route, from the index the service uses
    }


@router.get("/model", response_model=ModelCard, tags=["model"], summary="The model card")
async def get_model(valuer: ValuerDep, request: Request) -> Response:
    """What the served model is: version, training data, metrics, features, libraries."""
    card = model_card(valuer)
    card["price_index"] = dating.price_index(request).describe()
    return JSONBytes(card)


def districts(valuer: Valuer) -> dict[str, Any]:
    out = []
    for name, lat, lon, prices in valuer.district_places():
        rounded = {n: None if p is None else round(p, 2) for n, p in prices.items()}
        out.append(
            {
                "name": name,
                "latitude": round(lat, 6),
                "longitude": round(lon, 6),
                "median_price_m2": rounded,
            }
        )
    return {"count": len(out), "districts": out}


@router.get("/districts", response_model=DistrictsOut, tags=["model"], summary="Known districts")
async def get_districts(valuer: ValuerDep) -> Response:
    """The districts the model knows, with their centre and median price per m²."""
    return JSONBytes(districts(valuer))
