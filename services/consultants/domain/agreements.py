"""Agreements between communes as consultants sees them (a copy of bookings' agreements):
which one covers an engagement's staff, and the official's consent an acceptance records."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime

from contracts.agreements import AgreementStatus
from contracts.consultants import OfficialConsent
from contracts.errors import InvalidInput
from contracts.errors import field_error as _error


@dataclass(frozen=True)
class StaffAgreement:
    """What coverage needs of an agreement."""

    agreement_id: str
    reference: str
    parties: frozenset[str]
    covers_staff: bool
    status: AgreementStatus
    was_in_force: bool
    starts_on: date
    ends_on: date | None


def newer(stored_as_of: datetime | None, occurred_at: datetime) -> bool:
    """An agreement's event is applied only if it happened after the one already applied:
    a `signed` delivered after `in_force` does not undo it."""
    return stored_as_of is None or occurred_at >= stored_as_of


def covers(agreement: StaffAgreement, lender: str, borrower: str, first: date, last: date) -> bool:
    """The agreement covers staff lent by `lender` to `borrower` on every day of
    [first, last]: both communes are parties, it covers staff, it is in force (or was, and
    ended after `last`) and its dates hold the days."""
    if not agreement.covers_staff or not {lender, borrower} <= agreement.parties:
        return False
    if agreement.status == AgreementStatus.IN_FORCE:
        in_force = True
    else:  # ended: what it covered while in force stays covered
        in_force = (
            agreement.status == AgreementStatus.ENDED
            and agreement.was_in_force
            and agreement.ends_on is not None
        )
    ends_after = agreement.ends_on is None or last <= agreement.ends_on
    return in_force and agreement.starts_on <= first and ends_after


def covering(
    agreements: Iterable[StaffAgreement], lender: str, borrower: str, first: date, last: date
) -> StaffAgreement | None:
    """The agreement covering those days; of several, the most recent (latest start)."""
    found = [a for a in agreements if covers(a, lender, borrower, first, last)]
    return max(found, key=lambda a: (a.starts_on, a.agreement_id), default=None)


def check_consent(consent: OfficialConsent, today: date) -> None:
    """Consent is given before it is recorded: not dated in the future (422)."""
    if consent.given_on > today:
        raise InvalidInput(
            "The official's consent cannot be dated in the future",
            [
                _error(
                    "consent.given_on",
                    f"consent dated {consent.given_on.isoformat()}, after today",
                    "consent_in_future",
                )
            ],
        )
