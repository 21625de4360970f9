"""The consultants wire contracts: what billing charges from is unchanged, every event round
trips, days are exact half days, and query strings parse as clients send them."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pytest

from contracts.consultants import (
    EVENT_OF_STATUS,
    ConsultantPublished,
    ConsultantSnapshot,
    ConsultantUpdated,
    ConsultantWithdrawn,
    EngagementRequest,
    EngagementSnapshot,
    EngagementStatus,
    EngagementTimesheetApproved,
    MatchQuery,
    TimesheetApproval,
    TimesheetEntry,
)
from contracts.errors import InvalidInput, validated
from contracts.events import parse_event


def wire(event) -> dict:
    return json.loads(event.model_dump_json())


def errors_of(model, data) -> list[str]:
    with pytest.raises(InvalidInput) as refused:
        validated(model, data)
    return [e["field"] for e in refused.value.errors]


def test_the_payload_billing_charges_from_keeps_its_fields():
    assert list(TimesheetApproval.model_fields) == [
        "engagement_id",
        "timesheet_id",
        "consultant_id",
        "consultant_name",
        "lender_commune",
        "borrower_commune",
        "work_date",
        "days",
        "day_rate_cents",
        "amount_cents",
        "currency",
        "mission",
        "order_reference",
        "agreement_reference",
    ]
    approval = TimesheetApproval(
        engagement_id="E-1",
        timesheet_id="T-1",
        consultant_id="C-1",
        consultant_name="Claire Besson",
        lender_commune="42095",
        borrower_commune="42218",
        work_date=date(2026, 3, 9),
        days=Decimal("2.5"),
        day_rate_cents=65000,
        amount_cents=162500,
    )
    event = EngagementTimesheetApproved.new(approval, producer="consultants")
    body = wire(event)
    assert body["type"] == "engagement.timesheet_approved"
    assert body["payload"]["days"] == "2.5"  # exact, never a float
    assert parse_event(body) == event


@pytest.mark.parametrize("cls", [ConsultantPublished, ConsultantUpdated, ConsultantWithdrawn])
def test_consultant_events_round_trip(cls):
    snapshot = ConsultantSnapshot(
        consultant_id="C-1",
        home_commune="42095",
        name="Claire Besson",
        title="Urbaniste",
        skills=["plu"],
        languages=["fr"],
        day_rate_cents=65000,
        max_days_per_month=8,
        status="published",
        revision=2,
    )
    event = cls.new(snapshot, producer="consultants", correlation_id="req-1")
    assert type(parse_event(wire(event))) is cls


@pytest.mark.parametrize("status", list(EngagementStatus))
def test_engagement_events_round_trip(status):
    snapshot = EngagementSnapshot(
        engagement_id="E-1",
        consultant_id="C-1",
        consultant_name="Claire Besson",
        status=status,
        lender_commune="42095",
        borrower_commune="42218",
        start=date(2026, 3, 2),
        end=date(2026, 3, 16),
        days=Decimal(3),
        day_rate_cents=65000,
    )
    event = EVENT_OF_STATUS[status].new(snapshot, producer="consultants")
    parsed = parse_event(wire(event))
    assert parsed.type == f"engagement.{status.value}"
    assert parsed.payload.days == Decimal(3)


def test_days_are_whole_or_half_and_never_floats_in_disguise():
    entry = TimesheetEntry.model_validate({"date": "2026-03-09", "days": 2.5})
    assert entry.days == Decimal("2.5")
    assert entry.model_dump(mode="json")["days"] == "2.5"
    for days in (0, -0.5, 0.25, "1.3", "NaN", "Infinity", 400):
        assert errors_of(TimesheetEntry, {"date": "2026-03-09", "days": days}) == ["days"]


def test_an_engagement_period_is_ordered_and_at_most_a_year():
    base = {"consultant_id": "C-1", "days": 1, "mission": "PLU"}
    assert errors_of(EngagementRequest, base | {"start": "2026-03-09", "end": "2026-03-09"}) == [
        "end"
    ]
    assert errors_of(EngagementRequest, base | {"start": "2026-03-09", "end": "2027-06-01"}) == [
        "end"
    ]
    assert errors_of(EngagementRequest, base | {"start": "0999-01-01", "end": "2026-03-10"}) == [
        "start"
    ]


def test_a_match_query_reads_as_clients_send_it():
    query = MatchQuery.model_validate(
        {
            "need": " révision du PLU ",
            "skills": "plu, urbanisme,",
            "from": "2026-03-02",
            "to": "2026-03-31",
            "days": "2.5",
            "only_fitting": "true",
            "limit": "5",
        }
    )
    assert query.need == "révision du PLU"
    assert query.skills == ["plu", "urbanisme"]
    assert (query.from_, query.to, query.days) == (
        date(2026, 3, 2),
        date(2026, 3, 31),
        Decimal("2.5"),
    )
    assert query.only_fitting and query.limit == 5
    assert MatchQuery.model_validate(query.model_dump(mode="json", by_alias=True)) == query
    assert errors_of(MatchQuery, {"from": "2026-03-02"}) == ["to"]
    assert errors_of(MatchQuery, {"from": "2026-03-02", "to": "2027-03-05"}) == ["to"]
    assert errors_of(MatchQuery, {"days": "1", "near": "4221"}) == ["near", "days"]
    assert errors_of(MatchQuery, {"colour": "blue"}) == ["colour"]
