"""A property's fields are declared once, in ``imovsp.features.Property``; every other place
that names them (the API's schemas, the answer's comparables, the prediction log, the old
endpoint, the page's script, the CLI) must agree with it. A test of declarations."""

from __future__ import annotations

import dataclasses
import re
from importlib import resources

from imovsp.api import legacy
from imovsp.api.schemas import ComparableOut, PropertyIn, PropertyOut
from imovsp.cli import cli
from imovsp.features import OPTIONAL, RAW_NAMES, Property
from imovsp.monitoring.store import valuations
from imovsp.valuation import Comparable

FIELDS = [f.name for f in dataclasses.fields(Property)]


def test_the_api_takes_and_gives_the_propertys_fields_in_its_order() -> None:
    assert list(PropertyIn.model_fields) == FIELDS
    assert list(PropertyOut.model_fields) == FIELDS


def test_comparables_are_answered_with_the_fields_the_model_finds_them_with() -> None:
    found = [f.name for f in dataclasses.fields(Comparable)]
    assert [f.name for f in dataclasses.fields(ComparableOut)] == [*found, "price_at_data_month"]


def test_the_prediction_log_keeps_every_field_in_its_own_column() -> None:
    columns = [c.name for c in valuations.columns]
    assert [c for c in columns if c in FIELDS] == FIELDS


def test_the_old_endpoint_and_the_listings_name_them_alike() -> None:
    assert set(RAW_NAMES) == set(FIELDS)
    assert {RAW_NAMES[f]: f for f in legacy.FIELDS.values()} == legacy.FIELDS


def test_the_cli_has_an_option_for_each_field() -> None:
    predict = cli.commands["predict"]
    assert set(FIELDS) <= {p.name for p in predict.params}


def test_the_page_names_each_field_that_may_be_left_out() -> None:
    script = resources.files("imovsp").joinpath("web/static/app.js").read_text(encoding="utf-8")
    block = re.search(r"const NOT_GIVEN = \{(.*?)\};", script, re.S)
    assert block is not None
    assert set(re.findall(r"^\s*(\w+):", block.group(1), re.M)) == set(OPTIONAL)
