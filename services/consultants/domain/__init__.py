"""Consultant rules, pure, no I/O: the names the service, its repository, the tests and the
bench use, from the modules that define them (text, working_days, commitments, index,
matching, profiles, engagements)."""

from services.consultants.domain.commitments import (
    Commitment,
    commitments_fit,
    entangled,
    free_half_days,
)
from services.consultants.domain.engagements import (
    RESERVING,
    amount_cents,
    check_cancellable,
    check_request,
    check_timesheet,
    ensure_may,
    ensure_party,
    next_status,
)
from services.consultants.domain.index import ConsultantIndex, Profile
from services.consultants.domain.matching import (
    MatchResult,
    Need,
    match_consultants,
    proximity,
    rate_score,
)
from services.consultants.domain.profiles import amended, ensure_manager_of
from services.consultants.domain.text import tokens, vocabulary
from services.consultants.domain.working_days import (
    Calendar,
    Period,
    as_days,
    easter,
    half_days,
    is_working_day,
    public_holidays,
    working_days,
)

__all__ = [
    "RESERVING",
    "Calendar",
    "Commitment",
    "ConsultantIndex",
    "MatchResult",
    "Need",
    "Period",
    "Profile",
    "amended",
    "amount_cents",
    "as_days",
    "check_cancellable",
    "check_request",
    "check_timesheet",
    "commitments_fit",
    "easter",
    "ensure_manager_of",
    "ensure_may",
    "ensure_party",
    "entangled",
    "free_half_days",
    "half_days",
    "is_working_day",
    "match_consultants",
    "next_status",
    "proximity",
    "public_holidays",
    "rate_score",
    "tokens",
    "vocabulary",
    "working_days",
]
