"""Request and response schemas of the HTTP API: bounds and descriptions document the API.

Responses are built as plain dicts on the hot path (see :mod:`imovsp.api.render`); these models
describe them in the OpenAPI document, and the tests validate every response against them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

from imovsp import bounds
from imovsp.bounds import CONDO_FEE_MAX, CONDO_FEE_MIN, DEFAULT_LEVEL, PRICE_MAX, PRICE_MIN
from imovsp.valuation import Comparable

TYPICAL = (
    "Not given (absent or null): priced as unknown, by a model trained on listings with fields "
    "left out the way people leave them out, and the range widens to match; the answer lists "
    "it in `not_given`, with what is typical for the size in `typical` (context, not priced)."
)


def _lower(value: Any) -> Any:
    return value.lower().strip() if isinstance(value, str) else value


def _integral(value: Any) -> Any:
    # JSON Schema counts 2.0 as an integer; strict validation (see deps.read_json) would not.
    if isinstance(value, float) and math.isfinite(value):
        if not value.is_integer():
            raise PydanticCustomError(
                "int_from_float",
                "Input should be a valid integer, got a number with a fractional part",
            )
        return int(value)
    return value


Count = Annotated[int, BeforeValidator(_integral)]


def _price(value: float) -> float:
    # A price below a rent's or above an apartment's is a mistake, and one near zero or
    # infinity made the feedback's error_pct overflow to null (5e-324 was accepted).
    if not PRICE_MIN <= value <= PRICE_MAX:
        raise PydanticCustomError(
            "price_range", f"must be a price from R$ {PRICE_MIN:,.0f} to R$ {PRICE_MAX:,.0f}"
        )
    return value


def _condo_fee(value: float) -> float:
    # Within the field's bounds (0 to 100,000), which the web page states; a positive fee
    # below R$ 1 is no fee.
    if 0 < value < CONDO_FEE_MIN:
        raise PydanticCustomError(
            "condo_fee_range",
            f"must be 0 (unknown) or a monthly fee from R$ {CONDO_FEE_MIN:,.0f} to "
            f"R$ {CONDO_FEE_MAX:,.0f}",
        )
    return value


# Checked after parsing, so that the message says the whole range; documented as a range.
Price = Annotated[
    float,
    AfterValidator(_price),
    WithJsonSchema({"type": "number", "minimum": PRICE_MIN, "maximum": PRICE_MAX}),
]
Negotiation = Annotated[
    Literal["sale", "rent"],
    BeforeValidator(_lower),
    Field(description="`sale` values the sale price; `rent` the monthly rent (any case)."),
]


def _count(name: str, description: str) -> Any:
    """A count field, optional, within its bounds (:data:`imovsp.bounds.COUNTS`)."""
    low, high = bounds.COUNTS[name]
    return Field(None, ge=low, le=high, description=description)


class Strict(BaseModel):
    """Unknown fields are refused (a typo must not silently become a default)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class PropertyIn(Strict):
    """One apartment to value. Only `negotiation`, `district` and `size_m2` are required."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"negotiation": "sale", "district": "Santana", "size_m2": 130, "rooms": 4},
                {
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
                },
            ]
        }
    )

    negotiation: Negotiation
    district: str = Field(
        min_length=1,
        max_length=80,
        description=(
            "District of São Paulo, e.g. `Santana`: case and accents optional, "
            "`Santana/São Paulo` accepted. `GET /v1/districts` lists the known ones."
        ),
    )
    size_m2: float = Field(
        ge=bounds.SIZE_M2[0],
        le=bounds.SIZE_M2[1],
        description="Private area in m² (the training data runs from 30 to 880 m²).",
    )
    rooms: Count | None = _count("rooms", f"Bedrooms. {TYPICAL}")
    toilets: Count | None = _count("toilets", f"Bathrooms. {TYPICAL}")
    suites: Count | None = _count("suites", f"Bedrooms with bathroom. {TYPICAL}")
    parking: Count | None = _count("parking", f"Parking spaces. {TYPICAL}")
    condo_fee: float | None = Field(
        None,
        ge=0,
        le=CONDO_FEE_MAX,
        description=(
            "Monthly condominium fee in BRL, from R$ 1; 0 is read as the listings write it "
            f"(unknown or none). {TYPICAL}"
        ),
    )
    elevator: bool | None = Field(None, description=f"The building has an elevator. {TYPICAL}")
    furnished: bool | None = Field(None, description=f"Let or sold furnished. {TYPICAL}")
    swimming_pool: bool | None = Field(None, description=f"The building has a pool. {TYPICAL}")
    new: bool | None = Field(None, description=f"A new building (launch). {TYPICAL}")
    latitude: float | None = Field(
        None,
        ge=bounds.LATITUDE[0],
        le=bounds.LATITUDE[1],
        description=(
            "WGS84 latitude; must lie in São Paulo. Not given: the location within the "
            "district is unknown, and the range widens to match."
        ),
    )
    longitude: float | None = Field(
        None,
        ge=bounds.LONGITUDE[0],
        le=bounds.LONGITUDE[1],
        description="WGS84 longitude; give both coordinates or neither.",
    )

    @field_validator("condo_fee")
    @classmethod
    def _condo_fee_is_a_fee(cls, value: float | None) -> float | None:
        return value if value is None else _condo_fee(value)


class OptionsIn(Strict):
    """What to add to a valuation, as query parameters."""

    level: float | None = Field(
        None,
        ge=bounds.MIN_LEVEL,
        le=bounds.MAX_LEVEL,
        description=(
            f"Coverage of the price range, {DEFAULT_LEVEL} when omitted: the share of similar "
            "apartments whose price falls within [price_low, price_high]."
        ),
    )
    explain: bool = Field(False, description="Add `reasons`: what moved the price.")
    comparables: int = Field(
        0,
        ge=0,
        le=bounds.MAX_COMPARABLES,
        description="Add this many similar listings as `comparables`.",
    )
    as_of: str | None = Field(
        None,
        max_length=20,
        description=(
            "Month (`YYYY-MM`) whose money the valuation is given in: the model's figure moved "
            "by the Índice FipeZAP (FIPE) of the negotiation type. Default: the latest month "
            "the index covers for that type. `GET /v1/model` says which months it covers."
        ),
    )


NO_OPTIONS = OptionsIn()  # a request without a query string


class BatchIn(Strict):
    """Several properties valued in one request."""

    items: list[PropertyIn] = Field(
        description="The properties, at most `IMOVSP_BATCH_MAX_ITEMS` (1,000 by default).",
        # Documented, and checked by the route, which says how many were sent.
        json_schema_extra={"minItems": 1},
    )


NOT_GIVEN = "null: not given (priced as unknown)."


class PropertyOut(BaseModel):
    """The property as the model understood it: known district spelling; null for a field
    not given."""

    negotiation: Literal["sale", "rent"]
    district: str
    size_m2: float
    rooms: int | None = Field(description=NOT_GIVEN)
    toilets: int | None = Field(description=NOT_GIVEN)
    suites: int | None = Field(description=NOT_GIVEN)
    parking: int | None = Field(description=NOT_GIVEN)
    condo_fee: float | None = Field(description=f"BRL per month; {NOT_GIVEN}")
    elevator: bool | None = Field(description=NOT_GIVEN)
    furnished: bool | None = Field(description=NOT_GIVEN)
    swimming_pool: bool | None = Field(description=NOT_GIVEN)
    new: bool | None = Field(description=NOT_GIVEN)
    latitude: float | None = Field(description=NOT_GIVEN)
    longitude: float | None


class SharpenOut(BaseModel):
    """Fields not given that would narrow the range, and the width it would then have."""

    fields: list[str] = Field(
        description="The fields to give (`location` means `latitude` and `longitude`)."
    )
    width_pct: float = Field(description="The range's width with them given, % of the price.")
    message: str = Field(description='e.g. "give location: ±14% instead of ±23%".')


class ReasonOut(BaseModel):
    """What moved the price relative to the typical apartment."""

    feature: str
    value: str
    effect_pct: float = Field(description="Multiplicative effect in percent: +38 means x1.38.")
    effect_brl: float


@dataclass(frozen=True)
class ComparableOut(Comparable):
    """A similar listing from the training data."""

    # The fields are the model's own (valuation.Comparable), declared once: the answer gives
    # them all (answer.valuation). Extra keys are refused so that a test validating an answer
    # fails when the two part ways.
    __pydantic_config__ = ConfigDict(extra="forbid")

    price_at_data_month: Annotated[
        float | None,
        Field(description="`price` in the money of the model's data month (as listed)."),
    ] = None


class ValuationOut(BaseModel):
    """One valuation. Optional parts are null until asked for and supported by the model."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    price: float = Field(
        description="BRL, rounded: sales to R$ 1,000, rents to R$ 10. Rents are per month."
    )
    currency: Literal["BRL"] = "BRL"
    per_month: bool = Field(description="True for rents (a monthly price).")
    negotiation: Literal["sale", "rent"]
    district: str = Field(description="The district as understood (the model's spelling).")
    price_m2: float = Field(description="Price per m², BRL.")
    district_median_price_m2: float | None = Field(
        description="Median listed price per m² in the district for this negotiation type."
    )
    location_estimated: bool = Field(
        description="True when no coordinates were given: the district's centre was used."
    )
    not_given: list[str] = Field(
        description=(
            "Optional fields not given, priced as unknown (`location`: no coordinates; "
            "`condo_fee`: none or 0)."
        )
    )
    defaulted: list[str] = Field(
        description="Deprecated: the same list as `not_given` (these fields are no longer "
        "filled with typical values)."
    )
    typical: dict[str, float | bool] | None = Field(
        None,
        description="What is typical for a flat of this size, for the fields not given: "
        "context to show, not what was priced.",
    )
    property: PropertyOut
    level: float | None = Field(None, description="Nominal coverage of the range, e.g. 0.8.")
    price_low: float | None = Field(None, description="Low end of the range, BRL.")
    price_high: float | None = Field(None, description="High end of the range, BRL.")
    width_pct: float | None = Field(
        None, description="The range's width, (price_high - price_low) / price, in %."
    )
    sharpen: list[SharpenOut] = Field(
        default_factory=list,
        description="Fields not given that would narrow the range most, narrowest first.",
    )
    baseline: float | None = Field(
        None, description="Price of the typical apartment that the reasons start from."
    )
    reasons: list[ReasonOut] | None = Field(None, description="With `explain=true`.")
    comparables: list[ComparableOut] | None = Field(None, description="With `comparables=N`.")
    notes: list[str] = Field(
        default_factory=list,
        description="Options asked for that this model cannot give yet; where the point is "
        "when the coordinates lie more than 2 km outside the district named.",
    )
    model_version: str
    request_id: str
    as_of: str = Field(
        description="Month (YYYY-MM) whose money every amount here is in (`as_of`, else the "
        "latest month of the price index)."
    )
    index_factor: float = Field(
        description="What the model's figures were multiplied by to be in `as_of`'s money: "
        "the price index's ratio between `as_of` and `data_month` (1 when they are the same)."
    )
    data_month: str = Field(description="Month (YYYY-MM) of the model's listings' money.")
    price_at_data_month: float = Field(description="The price in `data_month`'s money.")
    index_basis: str = Field(description="The basis of the figures, in Portuguese.")
    index_credit: str = Field(description="The price index used, credited as its owner asks.")


class BatchItemOut(BaseModel):
    """One item of a batch: its valuation, or why it could not be valued."""

    model_config = ConfigDict(extra="forbid")

    index: int = Field(description="Position of the item in the request.")
    valuation: ValuationOut | None
    error: str | None = Field(description="Why this item could not be valued (else null).")


class BatchOut(BaseModel):
    """A batch's results, in the order of the request."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    count: int
    valued: int
    errors: int
    items: list[BatchItemOut]
    model_version: str
    request_id: str


class ErrorOut(BaseModel):
    """Every 4xx answer: one specific message, and the field-level errors for 422s."""

    detail: str
    errors: list[dict[str, Any]] | None = Field(
        None, description="For invalid fields: each field's location, message and type."
    )
    suggestions: list[str] | None = Field(
        None, description="For an unknown district: the closest known names."
    )
    request_id: str


class DistrictOut(BaseModel):
    name: str
    latitude: float = Field(description="Median latitude of the district's listings.")
    longitude: float
    median_price_m2: dict[str, float | None] = Field(
        description="Median listed price per m² by negotiation type (null: no listings)."
    )


class DistrictsOut(BaseModel):
    count: int
    districts: list[DistrictOut]


class ModelCard(BaseModel):
    """What the served model is, where it came from and how well it did."""

    model_config = ConfigDict(protected_namespaces=())

    version: str
    created_at: str
    negotiations: list[str]
    target: str
    data: dict[str, Any] = Field(description="Training data: source, sha256, rows, report.")
    metrics: dict[str, Any] = Field(
        description="Held-out test metrics per negotiation type; `patterns`: the same listings "
        "valued from each set of fields a person may give, with the ranges' coverage and "
        "width and the rule of thumb (district median price per m² × size) beside them."
    )
    cv: dict[str, Any] | None = None
    params: dict[str, Any]
    feature_schema: dict[str, Any]
    typical_by_size: list[dict[str, Any]] = Field(
        description="What is typical by size band: shown beside a valuation for the fields "
        "not given (`typical`), never priced."
    )
    libraries: dict[str, str]
    load_seconds: float | None
    data_month: str = Field(description="Month (YYYY-MM) whose money the model's prices are in.")
    price_index: dict[str, Any] = Field(
        description="The price index that moves valuations to other months: name, series "
        "(`total`: all flats), source file and the months it covers per negotiation type."
    )


class SeedPrediction(BaseModel):
    """The old deployment's answer, key included (with its trailing space)."""

    model_config = ConfigDict(json_schema_extra={"example": {"Previsao do valor R$ ": 988000.0}})

    previsao: float = Field(alias="Previsao do valor R$ ")
