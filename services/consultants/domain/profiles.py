"""Consultant profiles: who may publish or change them, and how an edit amends them."""

from __future__ import annotations

from contracts.caller import Caller, Role
from contracts.consultants import (
    ConsultantChanges,
    ConsultantTerms,
)
from contracts.errors import Forbidden, validated


def ensure_manager_of(caller: Caller, home_commune: str) -> None:
    """Only a manager of the consultant's home commune publishes or changes the profile."""
    if not caller.has(Role.MANAGER):
        raise Forbidden("Only a manager may publish or change consultants")
    if caller.commune != home_commune:
        raise Forbidden("This consultant belongs to another commune")


def amended(current: ConsultantTerms, changes: ConsultantChanges) -> ConsultantTerms:
    """The terms after an edit, validated as a whole."""
    merged = current.model_dump() | changes.model_dump(exclude_unset=True)
    return validated(ConsultantTerms, merged)
