"""Strict inputs (issue 21): every integer a client sends has a documented bound, and bank
statements are checked like JSON (amounts within the largest amount, dates within the
years we accept, text without control characters)."""

from __future__ import annotations

import importlib
import pkgutil
import unicodedata
from decimal import Decimal

import annotated_types
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

import contracts
from contracts.billing import MAX_CENTS
from contracts.consultants import ConsultantChanges
from contracts.emergencies import EmergencyDeclaration
from contracts.events import Payload
from contracts.fields import (
    BIDI_CONTROLS,
    INVISIBLE,
    DateOrInstant,
    Day,
    Input,
    Instant,
    Reason,
    RequiredReason,
    Text,
)
from contracts.listings import MAX_DURATION, ListingChanges, ListingDraft
from gateway.users import NewUser
from services.billing.bank_statements import (
    UnreadableStatement,
    cents_of,
    parse_camt053,
    parse_csv,
)

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


# -- dates are ISO 8601 -----------------------------------------------------------------


@pytest.mark.parametrize("kind", [Day, Instant, DateOrInstant], ids=["day", "instant", "either"])
@pytest.mark.parametrize("value", [0, "0", 1700000000, "1700000000", 1.5, True, "-1"])
def test_a_number_is_not_a_date(kind, value):
    # pydantic would read it as seconds since 1970: `statements?to=0` was 1970-01-01
    with pytest.raises(ValidationError) as refused:
        TypeAdapter(kind).validate_python(value)
    assert refused.value.errors()[0]["type"] in ("iso_date", "date_or_datetime")


@pytest.mark.parametrize("kind", [Day, DateOrInstant], ids=["day", "either"])
def test_an_iso_date_is_still_a_date(kind):
    assert str(TypeAdapter(kind).validate_python("2026-03-05"))[:10] == "2026-03-05"


# -- text people read -------------------------------------------------------------------

TEXT = TypeAdapter(Text)


def refusal(value: str) -> str:
    with pytest.raises(ValidationError) as refused:
        TEXT.validate_python(value)
    return refused.value.errors()[0]["type"]


@pytest.mark.parametrize(
    "value",
    [
        "\u200b\u200b\u200b",
        "\u3164\u3164\u3164",
        "\u115f\u1160",
        "\ufeff\u2060 \u200d",
        "\u2800\u2800",
    ],
)
def test_text_made_only_of_invisible_characters_is_refused(value):
    assert refusal(value) == "string_invisible"


@pytest.mark.parametrize("control", sorted(BIDI_CONTROLS))
def test_bidirectional_overrides_and_isolates_are_refused(control):
    assert refusal(f"Saleuse {control}evil.exe") == "string_bidi"


@pytest.mark.parametrize("control", ["\x07", "\x1b", "\x7f", "\x85"])
def test_control_characters_are_refused(control):
    assert refusal(f"Saleuse{control}") == "string_control"


def test_a_nul_character_is_refused_as_before():
    assert refusal("Chasse\x00neige") == "string_nul"


def test_text_is_normalised_to_nfc():
    assert TEXT.validate_python("Saleuse e\u0301quipe\u0301e") == "Saleuse équipée"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=30))
def test_accepted_text_is_nfc_shows_something_and_nothing_reorders_it(value):
    try:
        accepted = TEXT.validate_python(value)
    except ValidationError:
        return
    assert unicodedata.is_normalized("NFC", accepted)
    assert not BIDI_CONTROLS & set(accepted)
    assert accepted == "" or set(accepted) - INVISIBLE - {" ", "\u200b"}


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (ListingDraft, LISTING, "title"),
        (ListingChanges, {}, "title"),
        (ConsultantChanges, {}, "name"),
        (ConsultantChanges, {}, "title"),
        (Reason, {}, "reason"),
        (RequiredReason, {}, "reason"),
        (EmergencyDeclaration, {}, "name"),
        (NewUser, {}, "name"),
    ],
)
def test_titles_names_and_reasons_are_text_people_can_read(model, body, field):
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body | {field: "\u3164\u3164\u3164\u3164"})
    assert ("string_invisible", (field,)) in [(e["type"], e["loc"]) for e in refused.value.errors()]


# -- bank statements are checked like JSON ---------------------------------------------


@pytest.mark.parametrize("booked", ["0001-01-01", "9999-12-31", "31/12/1899", "01/01/3000"])
def test_a_statement_date_outside_the_years_we_accept_is_refused(booked):
    with pytest.raises(UnreadableStatement) as refused:
        parse_csv(f"date;montant\n2026-03-05;1,00\n{booked};12,00\n".encode())
    assert refused.value.field == "line 3: date"


@pytest.mark.parametrize("control", ["\x00", "\x01", "\x1b"])
def test_control_characters_in_a_csv_statement_are_refused(control):
    content = f"date;montant;tiers;libelle\n2026-03-05;12,00;A;FACT{control}URE\n".encode()
    with pytest.raises(UnreadableStatement) as refused:
        parse_csv(content)
    assert refused.value.field == "line 2: remittance"


def camt053(booked: str = "2026-03-05", information: str = "") -> bytes:
    return (
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        '<Stmt><Id>S</Id><Ntry><Amt Ccy="EUR">12.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        f"<Sts>BOOK</Sts><BookgDt><Dt>{booked}</Dt></BookgDt>"
        f"<AddtlNtryInf>{information}</AddtlNtryInf></Ntry></Stmt></BkToCstmrStmt></Document>"
    ).encode()


def test_a_camt053_entry_booked_in_year_one_is_refused():
    with pytest.raises(UnreadableStatement) as refused:
        parse_camt053(camt053(booked="0001-01-01"))
    assert refused.value.field == "Ntry[0]/BookgDt"


def test_a_camt053_remittance_with_a_c1_control_is_refused():
    with pytest.raises(UnreadableStatement) as refused:
        parse_camt053(camt053(information="FACT\u0085URE"))
    assert refused.value.field == "Ntry[0]/RmtInf"


def test_a_readable_camt053_entry_is_read():
    (credit,) = parse_camt053(camt053(information="FACTURE 42044-2026-000001")).credits
    assert (credit.amount_cents, credit.remittance) == (1200, "FACTURE 42044-2026-000001")
