"""Strict inputs (issue 21): every integer a client sends has a documented bound, and bank
statements are checked like JSON (amounts within the largest amount, dates within the
years we accept, text without control characters)."""

from __future__ import annotations

import importlib
import pkgutil
from decimal import Decimal

import annotated_types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import contracts
from contracts.billing import MAX_CENTS
from contracts.events import Payload
from contracts.fields import Input
from contracts.listings import MAX_DURATION, ListingChanges, ListingDraft
from services.billing.bank_statements import UnreadableStatement, cents_of, parse_csv

for _module in pkgutil.iter_modules(contracts.__path__):
    importlib.import_module(f"contracts.{_module.name}")
importlib.import_module("gateway.schemas")


def _inputs(cls=Input):
    for sub in cls.__subclasses__():
        # views and event payloads reuse the terms of an input, but nobody sends them
        if not issubclass(sub, Payload) and not sub.__name__.endswith("View"):
            yield sub
        yield from _inputs(sub)


def _integer_fields():
    for model in set(_inputs()):
        for name, field in model.model_fields.items():
            if int in (field.annotation, *getattr(field.annotation, "__args__", ())):
                yield f"{model.__module__}.{model.__name__}.{name}", field


INTEGER_FIELDS = sorted(_integer_fields(), key=lambda pair: pair[0])


@pytest.mark.parametrize(("where", "field"), INTEGER_FIELDS, ids=[w for w, _ in INTEGER_FIELDS])
def test_every_integer_a_client_sends_has_an_upper_bound(where, field):
    # the bound is in the OpenAPI document (maximum), and keeps the value within a BIGINT
    bounds = [m for m in field.metadata if isinstance(m, annotated_types.Le | annotated_types.Lt)]
    assert bounds, f"{where} has no upper bound"
    assert all(getattr(b, "le", getattr(b, "lt", None)) <= MAX_CENTS for b in bounds)


LISTING = {
    "title": "Saleuse",
    "category": "deneigement",
    "kind": "vehicle",
    "pricing_unit": "day",
    "rate_cents": 10000,
}


@pytest.mark.parametrize("field", ["min_duration", "max_duration"])
@pytest.mark.parametrize("value", [MAX_DURATION + 1, 2**63, 10**30])
def test_a_duration_beyond_a_year_in_hours_is_refused_on_publishing_and_editing(field, value):
    for model, body in ((ListingDraft, LISTING), (ListingChanges, {})):
        with pytest.raises(ValidationError) as refused:
            model.model_validate(body | {field: value})
        assert refused.value.errors()[0]["type"] == "less_than_equal"


def test_the_longest_duration_is_accepted():
    draft = ListingDraft.model_validate(LISTING | {"min_duration": 1, "max_duration": MAX_DURATION})
    assert draft.max_duration == MAX_DURATION


@pytest.mark.parametrize(
    "text", ["1e20", "92233720368547758.08", "1E30", "-1e20", "1000000000.01", "1e400"]
)
def test_a_statement_amount_beyond_the_largest_amount_is_refused(text):
    with pytest.raises(UnreadableStatement) as refused:
        cents_of(text, "line 2: amount")
    assert refused.value.field == "line 2: amount"
    assert "largest amount" in str(refused.value)


def test_the_largest_amount_is_read():
    assert cents_of("1000000000.00", "amount") == MAX_CENTS


@settings(max_examples=200, deadline=None)
@given(st.decimals(allow_nan=True, allow_infinity=True))
def test_any_decimal_is_read_within_the_bounds_or_refused(amount):
    try:
        cents = cents_of(str(amount), "amount")
    except UnreadableStatement:
        return
    assert abs(cents) <= MAX_CENTS
    assert Decimal(cents) / 100 == amount


def test_a_csv_line_with_a_huge_amount_is_refused_naming_the_line():
    content = b"date;montant;tiers\n2026-03-05;12,00;A\n2026-03-05;1e20;B\n"
    with pytest.raises(UnreadableStatement) as refused:
        parse_csv(content)
    assert refused.value.field == "line 3: amount"
