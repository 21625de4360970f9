"""Agreements between communes (conventions de mise à disposition) and the council decisions
that approve them: who may do what, their states, overlap and coverage of a loan. No I/O."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from contracts.agreements import AgreementDraft, AgreementStatus, DecisionDraft
from contracts.caller import Caller, Role
from contracts.clock import paris_date
from contracts.errors import Conflict, Forbidden, InvalidInput, NotFound, field_error
from infra.communes import CommuneDirectory

# a decision's PDF (or an agreement's signed scan) sent through the gateway's body limit
MAX_PDF_BYTES = 1_000_000
PDF_MAGIC = b"%PDF-"

_S = AgreementStatus
# action -> the statuses it leaves from (sign leads to signed or in force, decided below)
MOVES: dict[str, frozenset[AgreementStatus]] = {
    "propose": frozenset({_S.DRAFT}),
    "sign": frozenset({_S.PROPOSED, _S.SIGNED}),
    "end": frozenset({_S.DRAFT, _S.PROPOSED, _S.SIGNED, _S.IN_FORCE}),
}
STILL_BINDING = frozenset({_S.DRAFT, _S.PROPOSED, _S.SIGNED, _S.IN_FORCE})


@dataclass(frozen=True)
class Terms:
    """What overlap and coverage need to know of an agreement."""

    agreement_id: str
    reference: str
    status: AgreementStatus
    parties: frozenset[str]
    categories: frozenset[str]
    covers_staff: bool
    starts_on: date
    ends_on: date | None
    one_off_booking_id: str | None = None

    def runs_on(self, first: date, last: date) -> bool:
        """Whether every day from `first` to `last` lies within the agreement's term."""
        return self.starts_on <= first and (self.ends_on is None or last <= self.ends_on)


# -- drafting ------------------------------------------------------------------------------


def parties_of(draft: AgreementDraft, directory: CommuneDirectory) -> list[str]:
    """The parties a draft names, with every commune of its EPCI: each a known commune,
    each once (a commune named twice is a mistake, refused: parties are distinct)."""
    errors = []
    named = list(draft.parties)
    for n, code in enumerate(named):
        if directory.get(code) is None:
            errors.append(field_error(f"parties.{n}", f"no commune has INSEE code {code}"))
    if len(set(named)) != len(named):
        errors.append(field_error("parties", "each party is named once", "parties_not_distinct"))
    if draft.epci is not None:
        members = [
            c.insee_code for c in directory.search(limit=100_000) if c.epci_siren == draft.epci
        ]
        if not members:
            errors.append(field_error("epci", f"no EPCI has SIREN {draft.epci}", "unknown_epci"))
        named += [code for code in sorted(members) if code not in named]
    if errors:
        raise InvalidInput("The parties are not distinct known communes", errors)
    if len(named) < 2:
        raise InvalidInput(
            "An agreement binds at least two distinct communes",
            [field_error("parties", "name at least two distinct communes", "parties_not_distinct")],
        )
    return named


def check_draft(draft: AgreementDraft, drafter: Caller, directory: CommuneDirectory) -> list[str]:
    """The draft's parties, once its rules hold: the drafter's commune among them (else
    403), something in scope, and an end not before its start."""
    if not drafter.has(Role.MANAGER):
        raise Forbidden("Only a manager drafts an agreement for their commune")
    parties = parties_of(draft, directory)
    if drafter.commune not in parties:
        raise Forbidden("A manager drafts agreements their own commune is party to")
    errors = []
    if not draft.categories and not draft.covers_staff:
        errors.append(field_error("categories", "cover some categories, or staff", "empty_scope"))
    if draft.ends_on is not None and draft.ends_on < draft.starts_on:
        errors.append(
            field_error("ends_on", "the last day is on or after the first", "ends_before_start")
        )
    if errors:
        raise InvalidInput("The agreement's terms are incomplete", errors)
    return parties


def reference(initiator: str, year: int, n: int) -> str:
    """`CONV-42218-2027-003`: the initiating commune's n-th agreement drafted that year."""
    return f"CONV-{initiator}-{year}-{n:03d}"


def overlap(a: Terms, b: Terms) -> bool:
    """Whether two agreements would both govern some loan: two parties in common, a category
    (or staff) in both scopes, and a day in both terms."""
    if len(a.parties & b.parties) < 2:
        return False
    if not (a.categories & b.categories or (a.covers_staff and b.covers_staff)):
        return False
    a_end, b_end = a.ends_on or date.max, b.ends_on or date.max
    return a.starts_on <= b_end and b.starts_on <= a_end


def check_no_overlap(new: Terms, existing: Iterable[Terms]) -> None:
    """422 naming the agreement already governing some of the same loans (one-off
    agreements aside: they cover one request, which no framework agreement covered)."""
    for other in existing:
        if other.status in STILL_BINDING and not other.one_off_booking_id and overlap(new, other):
            raise InvalidInput(
                f"Agreement {other.reference} already covers some of these parties, "
                "categories and days",
                [
                    field_error(
                        "categories",
                        f"overlaps {other.reference} (same parties, scope and days)",
                        "overlapping_agreement",
                        reference=other.reference,
                    )
                ],
            )


# -- who, and the states -------------------------------------------------------------------


def ensure_party(caller: Caller, parties: Iterable[str]) -> None:
    """Someone of another commune does not learn the agreement exists."""
    if caller.commune not in set(parties):
        raise NotFound("No such agreement")


def ensure_manager(caller: Caller, parties: Iterable[str]) -> None:
    ensure_party(caller, parties)
    if not caller.has(Role.MANAGER):
        raise Forbidden("Only a manager of a party acts on an agreement")


def next_status(current: AgreementStatus, action: str, all_signed: bool = False) -> AgreementStatus:
    """Draft → proposed → signed (by some parties) → in force (by all) → ended; a draft or an
    agreement not yet in force may also end (withdrawn)."""
    if current not in MOVES[action]:
        raise Conflict(f"An agreement {current.value} cannot be {_PAST[action]}")
    if action == "propose":
        return _S.PROPOSED
    if action == "end":
        return _S.ENDED
    return _S.IN_FORCE if all_signed else _S.SIGNED


_PAST = {"propose": "proposed", "sign": "signed", "end": "ended"}


@dataclass(frozen=True)
class DecisionFacts:
    """What signing needs of a council decision."""

    decision_id: str
    commune: str
    decided_on: date
    agreement_ids: frozenset[str]
    authorises_mayor: bool


def check_signature(
    signer: str, signed: Iterable[str], decision: DecisionFacts | None, agreement_id: str
) -> None:
    """A party signs once, under a decision of its own council approving this agreement or
    authorising the mayor to sign agreements."""
    if signer in set(signed):
        raise Conflict("Your commune has already signed this agreement")
    if decision is None or decision.commune != signer:
        raise InvalidInput(
            "Sign under a council decision of your commune",
            [
                field_error(
                    "decision_id", "no decision of your commune has this id", "unknown_decision"
                )
            ],
        )
    if agreement_id not in decision.agreement_ids and not decision.authorises_mayor:
        raise InvalidInput(
            "This council decision neither approves the agreement nor authorises the mayor",
            [
                field_error(
                    "decision_id",
                    "the decision must approve this agreement or authorise the mayor",
                    "decision_does_not_approve",
                )
            ],
        )


# -- council decisions ---------------------------------------------------------------------


def check_decision(draft: DecisionDraft, today: date) -> None:
    """A decision already taken: dated today at the latest (Paris)."""
    if draft.date > today:
        raise InvalidInput(
            "A council decision cannot be dated in the future",
            [
                field_error(
                    "date",
                    f"on or before {today.isoformat()}",
                    "decision_in_the_future",
                    latest=today.isoformat(),
                )
            ],
        )


def check_pdf(content: bytes) -> None:
    """A PDF (by its signature), not empty, within the size limit."""
    if len(content) > MAX_PDF_BYTES:
        raise InvalidInput(
            f"The PDF may not exceed {MAX_PDF_BYTES} bytes",
            [field_error("file", f"at most {MAX_PDF_BYTES} bytes", "pdf_too_large")],
        )
    if not content.startswith(PDF_MAGIC):
        raise InvalidInput(
            "The file is not a PDF",
            [field_error("file", "send a PDF document (it starts with %PDF-)", "not_a_pdf")],
        )


# -- coverage of a loan --------------------------------------------------------------------


def loan_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The Paris days a loan runs on: its first, and its last (the end is excluded)."""
    return paris_date(start), paris_date(end - timedelta(microseconds=1))


def covering(
    agreements: Iterable[Terms],
    *,
    lender: str,
    borrower: str,
    category: str | None,
    start: datetime,
    end: datetime,
    booking_id: str | None = None,
) -> Terms | None:
    """The agreement in force that covers a loan: both communes parties, the listing's
    category in scope, every day of the loan within its term; a one-off agreement covers
    only its own request. The earliest-starting one when several could."""
    first, last = loan_days(start, end)
    found = [
        terms
        for terms in agreements
        if terms.status == _S.IN_FORCE
        and {lender, borrower} <= terms.parties
        and (
            terms.one_off_booking_id == booking_id
            if terms.one_off_booking_id
            else category in terms.categories
        )
        and terms.runs_on(first, last)
    ]
    return min(found, key=lambda t: (t.starts_on, t.reference), default=None)
