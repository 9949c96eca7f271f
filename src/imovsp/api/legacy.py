"""``POST /``: the old deployment's request and answer, served by the new model.

The old app read its 111-key one-hot body positionally, so clients had to send the keys in the
training column order. Here keys are read by name, in any order; zero one-hot keys may be left
out; the district and negotiation one-hots must each have exactly one key set to 1.
"""

from __future__ import annotations

import json
import time
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError
from starlette.responses import Response

from imovsp.api.deps import request_id, valuing
from imovsp.api.errors import PropertyError, error_response, field_errors
from imovsp.api.routes import ERRORS, JSONBytes
from imovsp.api.schemas import NO_OPTIONS, PropertyIn, SeedPrediction

ANSWER_KEY = "Previsao do valor R$ "
DISTRICT = "District_"
NEGOTIATION = "Negotiation Type_"
APARTMENT = "Property Type_apartment"
# Old key → field of PropertyIn.
FIELDS = {
    "Condo": "condo_fee",
    "Size": "size_m2",
    "Rooms": "rooms",
    "Toilets": "toilets",
    "Suites": "suites",
    "Parking": "parking",
    "Elevator": "elevator",
    "Furnished": "furnished",
    "Swimming Pool": "swimming_pool",
    "New": "new",
    "Latitude": "latitude",
    "Longitude": "longitude",
}
OLD_NAMES = {field: key for key, field in FIELDS.items()}
EXAMPLE = {
    "Condo": 1310,
    "Size": 130,
    "Rooms": 4,
    "Toilets": 5,
    "Suites": 3,
    "Parking": 1,
    "Elevator": 1,
    "Furnished": 0,
    "Swimming Pool": 1,
    "New": 0,
    "Latitude": -23.491423,
    "Longitude": -46.620248,
    "District_Santana": 1,
    "District_Moema": 0,
    "Negotiation Type_rent": 0,
    "Negotiation Type_sale": 1,
    "Property Type_apartment": 1,
}
BODY_DOC = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {key: {"type": "number"} for key in FIELDS}
                | {APARTMENT: {"enum": [0, 1]}},
                "patternProperties": {
                    f"^{prefix}": {"enum": [0, 1]} for prefix in (DISTRICT, NEGOTIATION)
                },
                "additionalProperties": False,
                "required": ["Size"],
                "description": (
                    "The old one-hot body: Condo, Size, Rooms, Toilets, Suites, Parking, "
                    "Elevator, Furnished, Swimming Pool, New, Latitude, Longitude (0 = unknown), "
                    "one `District_<name>` set to 1, one `Negotiation Type_sale|rent` set to 1, "
                    "`Property Type_apartment`. Keys in any order; zero one-hots optional."
                ),
            },
            "example": EXAMPLE,
        }
    },
}
router = APIRouter(tags=["compatibility"])


class SeedBodyError(ValueError):
    """A body the old format does not allow; the message says which key and why."""


def _one_hot(body: dict[str, Any], prefix: str, what: str) -> str:
    chosen = [key for key, value in body.items() if key.startswith(prefix) and value == 1]
    if len(chosen) != 1:
        named = f" ({', '.join(chosen)})" if chosen else ""
        raise SeedBodyError(
            f"{len(chosen) or 'no'} {what} set{named}: exactly one {prefix}<name> key must be 1"
        )
    return chosen[0][len(prefix) :]


def parse_seed_body(body: Any) -> dict[str, Any]:
    """The old body → PropertyIn fields; ``SeedBodyError`` says what is wrong with it."""
    if not isinstance(body, dict):
        raise SeedBodyError("the request body must be a JSON object")
    unknown = [
        k
        for k in body
        if k not in FIELDS and k != APARTMENT and not k.startswith((DISTRICT, NEGOTIATION))
    ]
    if unknown:
        raise SeedBodyError(f"unknown key(s): {', '.join(sorted(unknown)[:5])}")
    for key, value in body.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SeedBodyError(f"{key!r} must be a number, not {value!r}")
        one_hot = key.startswith((DISTRICT, NEGOTIATION)) or key == APARTMENT
        if one_hot and value not in (0, 1):
            raise SeedBodyError(f"{key!r} is a one-hot key: it must be 0 or 1, not {value!r}")
    if body.get(APARTMENT, 1) != 1:
        raise SeedBodyError("only apartments can be valued: Property Type_apartment must be 1")
    if "Size" not in body:
        raise SeedBodyError("'Size' is required")
    fields = {FIELDS[k]: v for k, v in body.items() if k in FIELDS}
    # The old data wrote unknown coordinates as 0.
    if not fields.get("latitude") or not fields.get("longitude"):
        fields["latitude"] = fields["longitude"] = None
    fields["district"] = _one_hot(body, DISTRICT, "districts")
    fields["negotiation"] = _one_hot(body, NEGOTIATION, "negotiation types")
    return fields


def _reject_constant(name: str) -> None:
    raise SeedBodyError(f"{name} is not a valid JSON number")


@router.post(
    "/",
    response_model=SeedPrediction,
    responses=ERRORS,
    openapi_extra={"requestBody": BODY_DOC},
    summary="The old deployment's endpoint",
)
async def seed_valuation(request: Request) -> Response:
    """Compatibility: the old 111-key one-hot body in, `{"Previsao do valor R$ ": price}` out.

    Like the old app, the body is read as JSON whatever its Content-Type.
    """
    started = time.perf_counter()
    raw = await request.body()
    if not raw.strip():
        return error_response(request, 400, "the request body is empty: send a JSON object")
    try:
        body = json.loads(raw, parse_constant=_reject_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, SeedBodyError) as exc:
        return error_response(request, 400, f"malformed JSON: {exc}")
    try:
        item = PropertyIn.model_validate(parse_seed_body(body))
        served = valuing(request)
        valuation = await served.ask(item, served.options(NO_OPTIONS))
    except SeedBodyError as exc:
        return error_response(request, 422, str(exc))
    except ValidationError as exc:
        errors = field_errors(exc.errors())
        for e in errors:
            e["field"] = OLD_NAMES.get(e["field"], e["field"])
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return error_response(request, 422, detail, errors=errors)
    except ValueError as exc:
        raise PropertyError.from_value_error(exc) from None
    # Answered in the model's own month: logged with factor 1 (and no as_of month).
    request.app.state.recorder.record(
        "legacy", request_id(request), item, valuation, time.perf_counter() - started
    )
    return JSONBytes({ANSWER_KEY: round(valuation.price, 2)})
