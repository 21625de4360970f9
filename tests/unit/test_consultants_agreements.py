"""Which agreement between communes covers an engagement's staff (parties, staff in its
scope, in force, dates), events applied newest-last, and the official's consent an
acceptance records (never dated in the future)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from contracts.agreements import AgreementStatus
from contracts.consultants import OfficialConsent
from contracts.errors import InvalidInput
from services.consultants.domain.agreements import (
    StaffAgreement,
    check_consent,
    covering,
    covers,
    newer,
)

FIRMINY, SAINT_ETIENNE, SAINT_CHAMOND = "42095", "42218", "42207"

IN_FORCE = StaffAgreement(
    agreement_id="a-1",
    reference="CONV-2026-01",
    parties=frozenset({FIRMINY, SAINT_ETIENNE}),
    covers_staff=True,
    status=AgreementStatus.IN_FORCE,
    was_in_force=True,
    starts_on=date(2026, 3, 1),
    ends_on=date(2026, 12, 31),
)


def covered(
    agreement: StaffAgreement, first: date, last: date, lender=FIRMINY, borrower=SAINT_ETIENNE
):
    return covers(agreement, lender, borrower, first, last)


def test_an_agreement_in_force_covers_the_days_within_its_dates_both_ways():
    assert covered(IN_FORCE, date(2026, 3, 1), date(2026, 12, 31))  # its first and last days
    assert covered(IN_FORCE, date(2026, 5, 4), date(2026, 5, 8), SAINT_ETIENNE, FIRMINY)
    assert not covered(IN_FORCE, date(2026, 2, 28), date(2026, 3, 6))  # starts before it
    assert not covered(IN_FORCE, date(2026, 12, 28), date(2027, 1, 1))  # ends after it
    assert covered(replace(IN_FORCE, ends_on=None), date(2026, 5, 4), date(2030, 1, 1))


def test_only_its_parties_staff_while_in_force_are_covered():
    days = (date(2026, 5, 4), date(2026, 5, 8))
    assert not covered(IN_FORCE, *days, lender=SAINT_CHAMOND)
    assert not covered(replace(IN_FORCE, covers_staff=False), *days)
    for status in (AgreementStatus.PROPOSED, AgreementStatus.SIGNED, AgreementStatus.DRAFT):
        assert not covered(replace(IN_FORCE, status=status, was_in_force=False), *days)


def test_an_ended_agreement_covers_only_what_it_covered_while_in_force():
    ended = replace(IN_FORCE, status=AgreementStatus.ENDED, ends_on=date(2026, 6, 30))
    assert covered(ended, date(2026, 5, 4), date(2026, 5, 8))
    assert not covered(ended, date(2026, 7, 1), date(2026, 7, 3))
    assert not covered(replace(ended, was_in_force=False), date(2026, 5, 4), date(2026, 5, 8))
    assert not covered(replace(ended, ends_on=None), date(2026, 5, 4), date(2026, 5, 8))


def test_of_several_agreements_the_most_recent_covers():
    newer_one = replace(
        IN_FORCE, agreement_id="a-2", reference="CONV-2026-02", starts_on=date(2026, 4, 1)
    )
    found = covering(
        [IN_FORCE, newer_one], FIRMINY, SAINT_ETIENNE, date(2026, 5, 4), date(2026, 5, 8)
    )
    assert found == newer_one
    assert covering([IN_FORCE], FIRMINY, SAINT_CHAMOND, date(2026, 5, 4), date(2026, 5, 8)) is None


def test_an_older_event_arriving_late_is_not_applied():
    applied = datetime(2026, 5, 4, 10, tzinfo=UTC)
    assert newer(None, applied)
    assert newer(applied, applied)  # the same moment: a redelivery is caught before, by id
    assert not newer(applied, datetime(2026, 5, 4, 9, tzinfo=UTC))


def test_consent_is_given_before_it_is_recorded():
    check_consent(OfficialConsent(given_on=date(2026, 5, 4)), today=date(2026, 5, 4))
    with pytest.raises(InvalidInput) as refused:
        check_consent(OfficialConsent(given_on=date(2026, 5, 5)), today=date(2026, 5, 4))
    assert refused.value.errors[0]["field"] == "consent.given_on"
    assert refused.value.errors[0]["type"] == "consent_in_future"
