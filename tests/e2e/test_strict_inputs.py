"""Strict inputs from outside (issue 21): what answered 500 or was read loosely is refused
with a 422 that names the field, and nothing is stored."""

from __future__ import annotations

import unicodedata
import uuid

import pytest

from tests.e2e.test_consultants_flow import URBANIST
from tests.e2e.test_listings_bad_input import draft
from tests.support import assert_problem

CHAMBON, SAINT_ETIENNE = "42044", "42218"
LISTING_TABLES = ("listings", "outbox")
CONSULTANT_TABLES = ("consultants", "outbox")
STATEMENT_TABLES = ("bank_statements", "statement_lines", "payments", "outbox")


def named(problem: dict) -> list[str]:
    return [error["field"] for error in problem["errors"]]


@pytest.mark.parametrize("field", ["min_duration", "max_duration"])
def test_a_huge_duration_is_refused_on_publishing_and_editing(stack, field):
    manager = stack.session("manager", CHAMBON)
    listing = manager.post(f"{stack.url}/api/v1/listings", json=draft()).json()
    before = stack.row_counts("listings", LISTING_TABLES)

    created = manager.post(f"{stack.url}/api/v1/listings", json=draft(**{field: 2**63}))
    edited = manager.patch(f"{stack.url}/api/v1/listings/{listing['id']}", json={field: 2**63})

    assert named(assert_problem(created, 422)) == [field]
    assert named(assert_problem(edited, 422)) == [field]
    assert stack.row_counts("listings", LISTING_TABLES) == before
    unchanged = manager.get(f"{stack.url}/api/v1/listings/{listing['id']}").json()
    assert unchanged["revision"] == listing["revision"]


def refused_statement(stack, content: str, content_type: str) -> list[str]:
    """Imports a statement that must be refused: the fields its 422 names; nothing stored."""
    finance = stack.session("finance", CHAMBON)
    before = stack.row_counts("billing", STATEMENT_TABLES)
    answer = finance.post(
        f"{stack.url}/api/v1/payments/import",
        data=content.encode(),
        headers={"Content-Type": content_type},
    )
    problem = assert_problem(answer, 422)
    assert stack.row_counts("billing", STATEMENT_TABLES) == before
    return named(problem)


def camt053(amount: str = "12.00", booked: str = "2026-03-05") -> str:
    return (
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>'
        f'<Stmt><Id>S-1</Id><Ntry><Amt Ccy="EUR">{amount}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        f"<Sts>BOOK</Sts><BookgDt><Dt>{booked}</Dt></BookgDt></Ntry></Stmt>"
        "</BkToCstmrStmt></Document>"
    )


@pytest.mark.parametrize("amount", ["1e20", "92233720368547758.08"])
def test_a_huge_statement_amount_is_refused_naming_the_line(stack, amount):
    csv = f"date;montant;tiers;libelle\n2026-03-05;12,00;A;VIR\n2026-03-05;{amount};B;VIR\n"
    assert refused_statement(stack, csv, "text/csv") == ["line 3: amount"]


def test_a_huge_camt053_amount_is_refused_naming_the_entry(stack):
    assert refused_statement(stack, camt053("1e20"), "application/xml") == ["Ntry[0]/Amt"]


@pytest.mark.parametrize("to", ["0", "1700000000", "-1"])
def test_a_query_date_must_be_an_iso_date(stack, to):
    finance = stack.session("finance", CHAMBON)

    answer = finance.get(
        f"{stack.url}/api/v1/statements", params={"counterparty": SAINT_ETIENNE, "to": to}
    )

    assert named(assert_problem(answer, 422)) == ["to"]


@pytest.mark.parametrize("booked", ["0001-01-01", "9999-12-31"])
def test_a_statement_date_outside_1900_2999_is_refused(stack, booked):
    csv = f"date;montant;tiers;libelle\n{booked};12,00;A;VIR\n"
    assert refused_statement(stack, csv, "text/csv") == ["line 2: date"]
    assert refused_statement(stack, camt053(booked=booked), "application/xml") == [
        "Ntry[0]/BookgDt"
    ]


def test_a_nul_byte_in_a_statement_is_refused(stack):
    csv = "date;montant;tiers;libelle\n2026-03-05;12,00;A\x00B;VIR\n"
    assert refused_statement(stack, csv, "text/csv") == ["line 2: name"]


@pytest.mark.parametrize(
    "title", ["\u200b\u200b\u200b\u200b", "\u3164\u3164\u3164", "Saleuse \u202eexe.fdp"]
)
def test_a_title_that_hides_or_reorders_itself_is_refused(stack, title):
    manager = stack.session("manager", CHAMBON)
    before = stack.row_counts("listings", LISTING_TABLES)

    answer = manager.post(f"{stack.url}/api/v1/listings", json=draft(title=title))

    assert named(assert_problem(answer, 422)) == ["title"]
    assert stack.row_counts("listings", LISTING_TABLES) == before


HIDING = ["\u200b\n\u3164", "Retour avant 18 h \u202eexe.fdp"]


@pytest.mark.parametrize("text", HIDING)
@pytest.mark.parametrize("field", ["description", "rules"])
def test_a_listing_text_that_hides_or_reorders_itself_is_refused(stack, field, text):
    manager = stack.session("manager", CHAMBON)
    listing = manager.post(f"{stack.url}/api/v1/listings", json=draft()).json()
    before = stack.row_counts("listings", LISTING_TABLES)

    created = manager.post(f"{stack.url}/api/v1/listings", json=draft(**{field: text}))
    edited = manager.patch(f"{stack.url}/api/v1/listings/{listing['id']}", json={field: text})

    assert named(assert_problem(created, 422)) == [field]
    assert named(assert_problem(edited, 422)) == [field]
    assert stack.row_counts("listings", LISTING_TABLES) == before


@pytest.mark.parametrize("text", HIDING)
def test_a_bio_that_hides_or_reorders_itself_is_refused(stack, text):
    manager = stack.session("manager", CHAMBON)
    before = stack.row_counts("consultants", CONSULTANT_TABLES)

    answer = manager.post(f"{stack.url}/api/v1/consultants", json=URBANIST | {"bio": text})

    assert named(assert_problem(answer, 422)) == ["bio"]
    assert stack.row_counts("consultants", CONSULTANT_TABLES) == before


def test_a_multi_line_description_is_kept_in_nfc(stack):
    manager = stack.session("manager", CHAMBON)
    text = "Lame de 3 m.\n\nRetour nettoye\u0301e\tavant 18 h."

    listing = manager.post(f"{stack.url}/api/v1/listings", json=draft(description=text))

    assert listing.status_code == 201, listing.text
    assert listing.json()["description"] == unicodedata.normalize("NFC", text)


def test_a_title_is_stored_in_nfc(stack):
    manager = stack.session("manager", CHAMBON)
    title = f"Saleuse e\u0301quipe\u0301e {uuid.uuid4().hex[:6]}"

    listing = manager.post(f"{stack.url}/api/v1/listings", json=draft(title=title)).json()

    assert listing["title"] == unicodedata.normalize("NFC", title)


def test_a_statement_may_come_as_the_file_of_a_multipart_form(stack):
    finance = stack.session("finance", CHAMBON)
    statement = camt053(amount="17.31", booked="2026-03-06")

    sent = finance.post(
        f"{stack.url}/api/v1/payments/import",
        files={"file": ("releve.xml", statement.encode(), "application/xml")},
    )
    no_file = finance.post(
        f"{stack.url}/api/v1/payments/import",
        files={"releve": ("releve.xml", statement.encode(), "application/xml")},
    )

    assert sent.status_code == 200, sent.text
    assert [line["amount_cents"] for line in sent.json()["unmatched"]] == [1731]
    assert named(assert_problem(no_file, 422)) == ["file"]
