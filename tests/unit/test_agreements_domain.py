"""The rules of agreements between communes: distinct parties, overlap, the states, council
decisions and PDFs, and which agreement covers a loan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from contracts.agreements import AgreementDraft, AgreementStatus, DecisionDraft
from contracts.caller import Caller, Role
from contracts.clock import PARIS
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound
from infra.communes import communes
from services.bookings import agreements
from services.bookings.agreements import DecisionFacts, Terms

SAINT_ETIENNE, CHAMBON, FIRMINY = "42218", "42044", "42095"
MANAGER = Caller(user_id="m", commune=SAINT_ETIENNE, roles=frozenset({Role.MANAGER}))
S = AgreementStatus


def draft(**changes) -> AgreementDraft:
    fields = {
        "title": "Matériel de déneigement",
        "parties": [SAINT_ETIENNE, CHAMBON],
        "categories": ["deneigement"],
        "starts_on": "2026-11-01",
        "ends_on": "2027-03-31",
    }
    return AgreementDraft.model_validate(fields | changes)


def terms(**changes) -> Terms:
    fields = dict(
        agreement_id="a1",
        reference="CONV-42218-2026-001",
        status=S.IN_FORCE,
        parties=frozenset({SAINT_ETIENNE, CHAMBON}),
        categories=frozenset({"deneigement"}),
        covers_staff=False,
        starts_on=date(2026, 11, 1),
        ends_on=date(2027, 3, 31),
    )
    return Terms(**(fields | changes))


def rule_of(refused: pytest.ExceptionInfo) -> str:
    return refused.value.errors[0]["type"]


# -- parties -------------------------------------------------------------------------------


def test_two_distinct_known_communes_are_parties():
    assert agreements.check_draft(draft(), MANAGER, communes()) == [SAINT_ETIENNE, CHAMBON]


@pytest.mark.parametrize(
    "parties", [[SAINT_ETIENNE, SAINT_ETIENNE], [SAINT_ETIENNE], [SAINT_ETIENNE, CHAMBON, CHAMBON]]
)
def test_parties_not_distinct_are_refused_naming_the_rule(parties):
    with pytest.raises(InvalidInput) as refused:
        agreements.check_draft(draft(parties=parties), MANAGER, communes())
    assert rule_of(refused) == "parties_not_distinct"


def test_an_unknown_commune_is_refused():
    with pytest.raises(InvalidInput) as refused:
        agreements.check_draft(draft(parties=[SAINT_ETIENNE, "99999"]), MANAGER, communes())
    assert refused.value.errors[0]["field"] == "parties.1"


def test_an_epci_brings_all_its_communes():
    epci = communes().get(SAINT_ETIENNE).epci_siren
    parties = agreements.check_draft(draft(parties=[], epci=epci), MANAGER, communes())
    assert SAINT_ETIENNE in parties and CHAMBON in parties and FIRMINY in parties
    assert len(parties) == len(set(parties)) > 20  # Saint-Étienne Métropole: 53 communes
    with_lyon = agreements.check_draft(draft(parties=["69123"], epci=epci), MANAGER, communes())
    assert with_lyon[0] == "69123" and set(parties) < set(with_lyon)  # named, then the EPCI's


def test_a_manager_drafts_only_for_their_own_commune_and_an_agent_not_at_all():
    with pytest.raises(Forbidden):
        agreements.check_draft(draft(parties=[CHAMBON, FIRMINY]), MANAGER, communes())
    agent = Caller(user_id="a", commune=SAINT_ETIENNE, roles=frozenset({Role.AGENT}))
    with pytest.raises(Forbidden):
        agreements.check_draft(draft(), agent, communes())


def test_the_scope_is_not_empty_and_the_term_does_not_end_before_it_starts():
    with pytest.raises(InvalidInput) as empty:
        agreements.check_draft(draft(categories=[]), MANAGER, communes())
    assert rule_of(empty) == "empty_scope"
    assert agreements.check_draft(draft(categories=[], covers_staff=True), MANAGER, communes())
    with pytest.raises(InvalidInput) as backwards:
        agreements.check_draft(draft(ends_on="2026-10-01"), MANAGER, communes())
    assert rule_of(backwards) == "ends_before_start"


def test_the_reference_names_the_initiator_and_the_year():
    assert agreements.reference(SAINT_ETIENNE, 2027, 3) == "CONV-42218-2027-003"


# -- overlap -------------------------------------------------------------------------------


def test_same_parties_scope_and_days_overlap():
    assert agreements.overlap(terms(), terms(starts_on=date(2027, 3, 31), ends_on=None))


@pytest.mark.parametrize(
    "other",
    [
        terms(categories=frozenset({"voirie"})),  # another scope
        terms(parties=frozenset({SAINT_ETIENNE, FIRMINY})),  # one party in common only
        terms(starts_on=date(2027, 4, 1), ends_on=None),  # the day after it ends
    ],
)
def test_another_scope_pair_or_term_does_not_overlap(other):
    assert not agreements.overlap(terms(), other)
    assert not agreements.overlap(other, terms())


def test_staff_on_both_sides_overlaps_and_an_open_end_runs_for_ever():
    a = terms(categories=frozenset(), covers_staff=True, ends_on=None)
    assert agreements.overlap(
        a, terms(categories=frozenset(), covers_staff=True, starts_on=date(2040, 1, 1))
    )


def test_an_epci_agreement_overlaps_a_bilateral_one_between_two_of_its_members():
    epci = terms(parties=frozenset({SAINT_ETIENNE, CHAMBON, FIRMINY}))
    with pytest.raises(InvalidInput) as refused:
        agreements.check_no_overlap(terms(reference="new"), [epci])
    assert rule_of(refused) == "overlapping_agreement"
    assert refused.value.errors[0]["reference"] == "CONV-42218-2026-001"


def test_ended_and_one_off_agreements_do_not_block_a_new_one():
    agreements.check_no_overlap(terms(), [terms(status=S.ENDED), terms(one_off_booking_id="b")])
    with pytest.raises(InvalidInput):
        agreements.check_no_overlap(terms(), [terms(status=S.DRAFT)])


# -- states and signatures -----------------------------------------------------------------


def test_draft_proposed_signed_in_force_ended():
    assert agreements.next_status(S.DRAFT, "propose") == S.PROPOSED
    assert agreements.next_status(S.PROPOSED, "sign") == S.SIGNED
    assert agreements.next_status(S.SIGNED, "sign", all_signed=True) == S.IN_FORCE
    assert agreements.next_status(S.IN_FORCE, "end") == S.ENDED
    assert agreements.next_status(S.DRAFT, "end") == S.ENDED  # withdrawn


@pytest.mark.parametrize(
    ("current", "action"),
    [(S.DRAFT, "sign"), (S.IN_FORCE, "sign"), (S.PROPOSED, "propose"), (S.ENDED, "end")],
)
def test_moves_out_of_order_are_conflicts(current, action):
    with pytest.raises(Conflict):
        agreements.next_status(current, action)


def test_another_commune_does_not_see_it_and_an_agent_does_not_act():
    with pytest.raises(NotFound):
        agreements.ensure_party(MANAGER, [CHAMBON, FIRMINY])
    agent = Caller(user_id="a", commune=SAINT_ETIENNE, roles=frozenset({Role.AGENT}))
    agreements.ensure_party(agent, [SAINT_ETIENNE, CHAMBON])
    with pytest.raises(Forbidden):
        agreements.ensure_manager(agent, [SAINT_ETIENNE, CHAMBON])


def facts(**changes) -> DecisionFacts:
    fields = dict(
        decision_id="d1",
        commune=SAINT_ETIENNE,
        decided_on=date(2026, 12, 1),
        agreement_ids=frozenset({"a1"}),
        authorises_mayor=False,
    )
    return DecisionFacts(**(fields | changes))


def test_a_party_signs_once_under_its_own_councils_approving_decision():
    agreements.check_signature(SAINT_ETIENNE, [CHAMBON], facts(), "a1")
    agreements.check_signature(
        SAINT_ETIENNE, [], facts(agreement_ids=frozenset(), authorises_mayor=True), "a1"
    )
    with pytest.raises(Conflict):
        agreements.check_signature(SAINT_ETIENNE, [SAINT_ETIENNE], facts(), "a1")
    for decision, rule in [
        (None, "unknown_decision"),
        (facts(commune=CHAMBON), "unknown_decision"),
        (facts(agreement_ids=frozenset({"other"})), "decision_does_not_approve"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            agreements.check_signature(SAINT_ETIENNE, [], decision, "a1")
        assert rule_of(refused) == rule


# -- council decisions and PDFs ------------------------------------------------------------


def decision(day: str) -> DecisionDraft:
    return DecisionDraft.model_validate(
        {"number": "2026-118", "date": day, "subject": "Approbation de la convention"}
    )


def test_a_decision_is_dated_today_at_the_latest():
    agreements.check_decision(decision("2026-12-06"), date(2026, 12, 6))
    with pytest.raises(InvalidInput) as refused:
        agreements.check_decision(decision("2026-12-07"), date(2026, 12, 6))
    assert rule_of(refused) == "decision_in_the_future"


def test_a_pdf_is_checked_by_its_signature_and_size():
    agreements.check_pdf(b"%PDF-1.7\n...")
    for content, rule in [
        (b"GIF89a", "not_a_pdf"),
        (b"", "not_a_pdf"),
        (b"%PDF-" + b"0" * agreements.MAX_PDF_BYTES, "pdf_too_large"),
    ]:
        with pytest.raises(InvalidInput) as refused:
            agreements.check_pdf(content)
        assert rule_of(refused) == rule


# -- coverage ------------------------------------------------------------------------------


def paris(day: int, month: int = 1, year: int = 2027) -> datetime:
    """Midnight in Paris, as a loan by the day starts and ends."""
    return datetime(year, month, day, tzinfo=PARIS).astimezone(UTC)


def cover(agreements_, **changes):
    loan = dict(lender=CHAMBON, borrower=SAINT_ETIENNE, category="deneigement")
    loan |= {"start": paris(18), "end": paris(20)} | changes
    return agreements.covering(agreements_, **loan)


def test_an_agreement_in_force_covers_a_loan_in_scope_between_its_parties():
    assert cover([terms()]).reference == "CONV-42218-2026-001"
    # the loan's last day is the day before its end (midnight): 31 March is the term's last
    assert cover([terms()], start=paris(30, 3), end=paris(1, 4)) is not None


@pytest.mark.parametrize(
    "loan",
    [
        {"category": "voirie"},
        {"borrower": FIRMINY},
        {"start": paris(31, 3), "end": paris(2, 4)},  # runs past the term
        {"start": paris(31, 10, 2026), "end": paris(2, 11, 2026)},  # starts before it
    ],
)
def test_out_of_scope_parties_or_term_is_not_covered(loan):
    assert cover([terms()], **loan) is None


def test_only_agreements_in_force_cover():
    for status in (S.DRAFT, S.PROPOSED, S.SIGNED, S.ENDED):
        assert cover([terms(status=status)]) is None


def test_a_one_off_agreement_covers_its_own_request_only():
    one_off = terms(one_off_booking_id="b1", categories=frozenset({"deneigement"}))
    assert cover([one_off], booking_id="b1") is not None
    assert cover([one_off], booking_id="b2") is None
    assert cover([one_off]) is None


def test_of_two_covering_agreements_the_earliest_starting_one_is_named():
    later = terms(reference="CONV-42044-2026-002", starts_on=date(2026, 12, 1))
    assert cover([later, terms()]).reference == "CONV-42218-2026-001"


# -- what each refusal says, exactly (the pages and clients read it) -----------------------


def refusal(raised: pytest.ExceptionInfo) -> tuple[str, list[dict]]:
    return raised.value.detail, raised.value.errors


def test_the_parties_refusals_name_the_field_and_the_rule():
    with pytest.raises(InvalidInput) as unknown:
        agreements.parties_of(draft(parties=[SAINT_ETIENNE, "99999"]), communes())
    assert refusal(unknown) == (
        "The parties are not distinct known communes",
        [
            {
                "field": "parties.1",
                "message": "no commune has INSEE code 99999",
                "type": "value_error",
            }
        ],
    )
    with pytest.raises(InvalidInput) as twice:
        agreements.parties_of(draft(parties=[CHAMBON, CHAMBON, SAINT_ETIENNE]), communes())
    assert refusal(twice)[1] == [
        {"field": "parties", "message": "each party is named once", "type": "parties_not_distinct"}
    ]
    with pytest.raises(InvalidInput) as alone:
        agreements.parties_of(draft(parties=[CHAMBON]), communes())
    assert refusal(alone) == (
        "An agreement binds at least two distinct communes",
        [
            {
                "field": "parties",
                "message": "name at least two distinct communes",
                "type": "parties_not_distinct",
            }
        ],
    )
    with pytest.raises(InvalidInput) as epci:
        agreements.parties_of(draft(epci="000000000"), communes())
    assert refusal(epci)[1] == [
        {"field": "epci", "message": "no EPCI has SIREN 000000000", "type": "unknown_epci"}
    ]


def test_the_overlap_refusal_names_the_agreement_overlapped():
    with pytest.raises(InvalidInput) as overlapping:
        agreements.check_no_overlap(terms(reference="new"), [terms()])
    assert refusal(overlapping) == (
        "Agreement CONV-42218-2026-001 already covers some of these parties, categories and days",
        [
            {
                "field": "categories",
                "message": "overlaps CONV-42218-2026-001 (same parties, scope and days)",
                "type": "overlapping_agreement",
                "reference": "CONV-42218-2026-001",
            }
        ],
    )


def test_overlap_at_the_edges():
    # the very day one ends, the other starts: a day in common
    assert agreements.overlap(terms(), terms(starts_on=date(2027, 3, 31), ends_on=date(2027, 5, 1)))
    assert agreements.overlap(terms(starts_on=date(2027, 3, 31), ends_on=None), terms())
    # staff lent under one only: no scope in common
    staff = terms(categories=frozenset(), covers_staff=True)
    assert not agreements.overlap(staff, terms(categories=frozenset()))
    assert not agreements.overlap(terms(categories=frozenset()), staff)


def test_who_is_refused_is_told_so():
    with pytest.raises(NotFound) as outsider:
        agreements.ensure_party(MANAGER, [CHAMBON, FIRMINY])
    assert outsider.value.detail == "No such agreement"
    finance = Caller(user_id="f", commune=SAINT_ETIENNE, roles=frozenset({Role.FINANCE}))
    with pytest.raises(Forbidden) as not_a_manager:
        agreements.ensure_manager(finance, [SAINT_ETIENNE, CHAMBON])
    assert not_a_manager.value.detail == "Only a manager of a party acts on an agreement"
    agreements.ensure_manager(MANAGER, [SAINT_ETIENNE, CHAMBON])
    with pytest.raises(Conflict) as late:
        agreements.next_status(S.ENDED, "end")
    assert late.value.detail == "An agreement ended cannot be ended"


def test_the_signature_refusals_say_which_rule():
    with pytest.raises(Conflict) as again:
        agreements.check_signature(SAINT_ETIENNE, [SAINT_ETIENNE], facts(), "a1")
    assert again.value.detail == "Your commune has already signed this agreement"
    with pytest.raises(InvalidInput) as foreign:
        agreements.check_signature(SAINT_ETIENNE, [], facts(commune=CHAMBON), "a1")
    assert refusal(foreign) == (
        "Sign under a council decision of your commune",
        [
            {
                "field": "decision_id",
                "message": "no decision of your commune has this id",
                "type": "unknown_decision",
            }
        ],
    )
    with pytest.raises(InvalidInput) as unrelated:
        agreements.check_signature(SAINT_ETIENNE, [], facts(agreement_ids=frozenset()), "a1")
    assert refusal(unrelated) == (
        "This council decision neither approves the agreement nor authorises the mayor",
        [
            {
                "field": "decision_id",
                "message": "the decision must approve this agreement or authorise the mayor",
                "type": "decision_does_not_approve",
            }
        ],
    )


def test_the_decision_and_pdf_refusals_say_which_rule():
    with pytest.raises(InvalidInput) as future:
        agreements.check_decision(decision("2026-12-07"), date(2026, 12, 6))
    assert refusal(future) == (
        "A council decision cannot be dated in the future",
        [
            {
                "field": "date",
                "message": "on or before 2026-12-06",
                "type": "decision_in_the_future",
                "latest": "2026-12-06",
            }
        ],
    )
    agreements.check_pdf(b"%PDF-" + b"0" * (agreements.MAX_PDF_BYTES - 5))  # just the limit
    with pytest.raises(InvalidInput) as large:
        agreements.check_pdf(b"%PDF-" + b"0" * (agreements.MAX_PDF_BYTES - 4))
    assert refusal(large) == (
        "The PDF may not exceed 1000000 bytes",
        [{"field": "file", "message": "at most 1000000 bytes", "type": "pdf_too_large"}],
    )
    with pytest.raises(InvalidInput) as not_pdf:
        agreements.check_pdf(b"PK\x03\x04")
    assert refusal(not_pdf) == (
        "The file is not a PDF",
        [
            {
                "field": "file",
                "message": "send a PDF document (it starts with %PDF-)",
                "type": "not_a_pdf",
            }
        ],
    )


def test_a_loan_starting_the_agreements_first_day_and_ending_at_midnight_is_covered():
    first_day = terms(starts_on=date(2027, 1, 18), ends_on=date(2027, 1, 19))
    assert cover([first_day], start=paris(18), end=paris(20)) is not None
    assert agreements.loan_days(paris(18), paris(20)) == (date(2027, 1, 18), date(2027, 1, 19))
    # a loan by the hour ending a microsecond after midnight runs into the next day
    late = paris(20) + timedelta(microseconds=1)
    assert agreements.loan_days(paris(18), late) == (date(2027, 1, 18), date(2027, 1, 20))


def test_the_draft_refusals_say_which_rule():
    agent = Caller(user_id="a", commune=SAINT_ETIENNE, roles=frozenset({Role.AGENT}))
    with pytest.raises(Forbidden) as not_a_manager:
        agreements.check_draft(draft(), agent, communes())
    assert not_a_manager.value.detail == "Only a manager drafts an agreement for their commune"
    with pytest.raises(Forbidden) as for_others:
        agreements.check_draft(draft(parties=[CHAMBON, FIRMINY]), MANAGER, communes())
    assert for_others.value.detail == "A manager drafts agreements their own commune is party to"
    with pytest.raises(InvalidInput) as both:
        agreements.check_draft(draft(categories=[], ends_on="2026-10-01"), MANAGER, communes())
    assert refusal(both) == (
        "The agreement's terms are incomplete",
        [
            {
                "field": "categories",
                "message": "cover some categories, or staff",
                "type": "empty_scope",
            },
            {
                "field": "ends_on",
                "message": "the last day is on or after the first",
                "type": "ends_before_start",
            },
        ],
    )
    one_day = draft(starts_on="2026-11-01", ends_on="2026-11-01")
    assert agreements.check_draft(one_day, MANAGER, communes()) == [SAINT_ETIENNE, CHAMBON]
