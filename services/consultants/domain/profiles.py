"""Consultant profiles: who sees them, who may publish or change them, how an edit amends
them, and what a change must leave intact (the days already committed)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from contracts.caller import Caller
from contracts.consultants import (
    ConsultantChanges,
    ConsultantDraft,
    ConsultantStatus,
    ConsultantTerms,
)
from contracts.errors import Conflict, NotFound, validated
from contracts.fields import amended  # noqa: F401 - the service asks the domain
from services.consultants.domain.commitments import Commitment, commitments_fit, entangled
from services.consultants.domain.text import vocabulary
from services.consultants.domain.working_days import Calendar, Period


def visible(status: str, home_commune: str, commune: str) -> bool:
    """A published consultant, or a withdrawn one of the caller's own commune."""
    return status == ConsultantStatus.PUBLISHED or home_commune == commune


def no_such_consultant(consultant_id: str) -> NotFound:
    return NotFound(f"No consultant {consultant_id}")


def is_withdrawn(status: str) -> bool:
    return status == ConsultantStatus.WITHDRAWN


def ensure_manager_of(caller: Caller, home_commune: str) -> None:
    """Only a manager of the consultant's home commune publishes or changes the profile."""
    caller.ensure_manages(home_commune, "consultants", "This consultant")


def ensure_changeable(caller: Caller, home_commune: str, status: str) -> None:
    """A manager of its commune changes a consultant, until it is withdrawn."""
    ensure_manager_of(caller, home_commune)
    if is_withdrawn(status):
        raise Conflict("This consultant is withdrawn and can no longer change")


def terms_of_draft(draft: ConsultantDraft) -> ConsultantTerms:
    """The draft's terms with its skills as vocabulary ids (unknown ones refused, 422)."""
    fields = draft.model_dump(exclude={"availability"})
    fields["skills"] = vocabulary().resolve(draft.skills)
    return validated(ConsultantTerms, fields)


def with_skill_ids(changes: ConsultantChanges) -> ConsultantChanges:
    """The edit with its skills, if it changes them, as vocabulary ids (422 if unknown)."""
    if changes.skills is not None:
        changes.skills = vocabulary().resolve(changes.skills)
    return changes


def ensure_commitments_fit(
    calendar: Calendar,
    max_days_per_month: int,
    held: Sequence[Commitment],
    today: date,
    *,
    previous_max: int | None = None,
) -> None:
    """The days already committed to engagements still fit the consultant's calendar and
    monthly maximum after a change (409). A maximum that does not fall is not checked."""
    if previous_max is not None and max_days_per_month >= previous_max:
        return
    if not held:
        return
    span = Period(today, max(today, *(c.end for c in held)))
    if not commitments_fit(calendar, max_days_per_month, entangled(held, span)):
        raise Conflict(
            "The days already committed to engagements would no longer fit: change "
            "or cancel those engagements first"
        )
