"""The wire contracts: event envelopes, listing schemas, per-field errors and remote errors."""

import json
from datetime import UTC, date, datetime

import pytest
from nameko.exceptions import deserialize, serialize
from pydantic import ValidationError

from contracts.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceError,
    Unavailable,
    validated,
)
from contracts.events import UnknownEvent, event_types, parse_event
from contracts.listings import (
    Blackout,
    ListingDraft,
    ListingPublished,
    ListingQuery,
    ListingSnapshot,
    ListingUpdated,
    ListingWithdrawn,
)
from contracts.topology import SUBSCRIPTIONS

DRAFT = {
    "title": "Chasse-neige avec lame",
    "category": "deneigement",
    "kind": "vehicle",
    "pricing_unit": "day",
    "rate_cents": 25_000,
}


def snapshot() -> ListingSnapshot:
    return ListingSnapshot(
        **DRAFT,
        listing_id="L-1",
        owner_commune="42218",
        status="published",
        revision=3,
        blackouts=[
            Blackout(
                id="B-1",
                reason="révision",
                start=datetime(2026, 1, 5, 8, tzinfo=UTC),
                end=datetime(2026, 1, 6, 8, tzinfo=UTC),
            )
        ],
    )


def wire(event) -> dict:
    """What a consumer receives: the event as JSON text, parsed back."""
    return json.loads(event.model_dump_json())


def errors_of(model, data) -> list[dict]:
    with pytest.raises(InvalidInput) as raised:
        validated(model, data)
    return raised.value.errors


# -- events -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [ListingPublished, ListingUpdated, ListingWithdrawn])
def test_an_event_round_trips_into_its_own_class(cls):
    event = cls.new(snapshot(), producer="listings", correlation_id="req-7")
    parsed = parse_event(wire(event))
    assert type(parsed) is cls
    assert parsed.event_id == event.event_id
    assert parsed == event
    assert parsed.payload.blackouts[0].start == datetime(2026, 1, 5, 8, tzinfo=UTC)


def test_a_new_event_carries_its_type_and_version():
    event = ListingUpdated.new(snapshot(), producer="listings")
    assert (event.type, event.version, event.source) == ("listing.updated", 1, "listings")
    assert event.occurred_at.tzinfo is not None
    assert ListingUpdated.new(snapshot(), producer="listings").event_id != event.event_id


@pytest.mark.parametrize("header", [{"type": "listing.exploded"}, {"version": 2}, {"version": 0}])
def test_unknown_type_or_version_is_refused(header):
    body = wire(ListingPublished.new(snapshot(), producer="listings")) | header
    with pytest.raises(UnknownEvent):
        parse_event(body)
    assert issubclass(UnknownEvent, ValueError)


@pytest.mark.parametrize("field", ["type", "version", "producer", "payload"])
def test_a_missing_envelope_field_is_refused(field):
    body = wire(ListingPublished.new(snapshot(), producer="listings"))
    del body[field]
    with pytest.raises(ValueError):
        parse_event(body)


def test_a_missing_payload_field_is_refused():
    body = wire(ListingPublished.new(snapshot(), producer="listings"))
    del body["payload"]["owner_commune"]
    with pytest.raises(ValidationError):
        parse_event(body)


def test_an_unexpected_payload_field_is_refused():
    body = wire(ListingPublished.new(snapshot(), producer="listings"))
    body["payload"]["colour"] = "orange"
    with pytest.raises(ValidationError):
        parse_event(body)


def test_every_subscribed_event_type_is_registered():
    registered = set(event_types())
    assert {"listing.published", "listing.updated", "listing.withdrawn"} <= registered
    for subscription in SUBSCRIPTIONS:
        assert set(subscription.event_types) <= registered


# -- listing query ----------------------------------------------------------------------


def test_radius_without_near_is_refused_on_radius_km():
    errors = errors_of(ListingQuery, {"radius_km": 10})
    assert [e["field"] for e in errors] == ["radius_km"]
    assert "radius_km needs near" in errors[0]["message"]
    assert ListingQuery(near="42218", radius_km=10).radius_km == 10


@pytest.mark.parametrize("lone", [{"available_from": "2026-05-01"}, {"available_to": "2026-05-01"}])
def test_a_lone_availability_bound_is_refused(lone):
    errors = errors_of(ListingQuery, lone)
    assert [e["field"] for e in errors] == ["available_to"]
    assert "go together" in errors[0]["message"]


def test_availability_bounds_are_dates_or_aware_datetimes():
    query = ListingQuery(available_from="2026-05-01", available_to="2026-05-03T18:00:00+02:00")
    assert query.available_from == date(2026, 5, 1)
    assert isinstance(query.available_to, datetime)
    assert query.available_to.utcoffset().total_seconds() == 7200


def test_a_datetime_without_offset_is_one_error_on_its_field():
    errors = errors_of(
        ListingQuery, {"available_from": "2026-05-01T10:00:00", "available_to": "2026-05-02"}
    )
    assert [e["field"] for e in errors] == ["available_from"]


@pytest.mark.parametrize("day", ["0001-01-01", "1899-12-31", "3000-01-01"])
def test_a_year_out_of_range_is_refused(day):
    errors = errors_of(ListingQuery, {"available_from": day, "available_to": "2026-05-02"})
    assert [(e["field"], e["type"]) for e in errors] == [("available_from", "date_out_of_range")]


def test_nul_characters_are_refused():
    errors = errors_of(ListingDraft, DRAFT | {"title": "Chasse\x00neige"})
    assert [(e["field"], e["type"]) for e in errors] == [("title", "string_nul")]


@pytest.mark.parametrize("near", ["42218", "2A004", "2B033"])
def test_near_takes_an_insee_code(near):
    assert ListingQuery(near=near).near == near


@pytest.mark.parametrize("near", ["4221", "422180", "saint-etienne", "2C004"])
def test_near_refuses_what_is_not_an_insee_code(near):
    with pytest.raises(ValidationError):
        ListingQuery(near=near)


# -- listing draft and per-field errors -------------------------------------------------


def test_a_valid_draft_gets_defaults_and_stripped_text():
    draft = validated(ListingDraft, DRAFT | {"title": "  Chasse-neige  "})
    assert isinstance(draft, ListingDraft)
    assert draft.title == "Chasse-neige"
    assert (draft.currency, draft.quantity, draft.deposit_cents) == ("EUR", 1, 0)


def test_an_unknown_category_names_the_field():
    errors = errors_of(ListingDraft, DRAFT | {"category": "pyrotechnie"})
    assert [e["field"] for e in errors] == ["category"]


@pytest.mark.parametrize("field", ["rate_cents", "deposit_cents", "operator_rate_cents"])
def test_negative_money_is_refused(field):
    errors = errors_of(ListingDraft, DRAFT | {field: -1})
    assert [e["field"] for e in errors] == [field]


def test_an_extra_field_is_refused():
    errors = errors_of(ListingDraft, DRAFT | {"colour": "orange"})
    assert [(e["field"], e["type"]) for e in errors] == [("colour", "extra_forbidden")]
    assert errors[0]["message"]


def test_one_error_entry_per_bad_field():
    bad = DRAFT | {"title": "x", "category": "pyrotechnie", "rate_cents": -5, "quantity": 0}
    errors = errors_of(ListingDraft, bad)
    assert sorted(e["field"] for e in errors) == ["category", "quantity", "rate_cents", "title"]
    for entry in errors:
        assert set(entry) == {"field", "message", "type"}
        assert entry["message"]
    assert {e["type"] for e in errors} >= {"string_too_short", "greater_than_equal"}


def test_a_missing_required_field_is_reported():
    errors = errors_of(ListingDraft, {k: v for k, v in DRAFT.items() if k != "kind"})
    assert errors == [{"field": "kind", "message": "Field required", "type": "missing"}]


def test_invalid_input_names_the_model():
    with pytest.raises(InvalidInput, match="Invalid ListingDraft"):
        validated(ListingDraft, {})


# -- remote errors ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ServiceError("Bad"),
        InvalidInput("Invalid cursor", [{"field": "cursor", "message": "m", "type": "t"}]),
        NotFound("No listing L-9"),
        Forbidden("Only a manager may publish or change listings"),
        Conflict(
            "Already booked",
            conflicting_period={"start": "2026-05-01T08:00:00+00:00", "end": "2026-05-02"},
            conflicts=[{"start": "2026-05-01", "end": "2026-05-02", "detail": "taken"}],
        ),
        Unavailable("listings is not answering"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_remote_errors_come_back_as_the_same_class(error):
    received = deserialize(json.loads(json.dumps(serialize(error))))
    assert type(received) is type(error)
    assert received.detail == error.detail
    assert received.errors == error.errors
    assert received.extra == error.extra
    assert received.code == error.code


@pytest.mark.parametrize("missing", ["event_id", "occurred_at"])
def test_an_event_without_its_identity_is_refused(missing):
    """A made-up id would defeat de-duplication of a redelivered event."""
    body = ListingPublished.new(
        ListingSnapshot(
            listing_id="l",
            owner_commune="42044",
            status="published",
            revision=1,
            title="Saleuse",
            category="deneigement",
            kind="equipment",
            pricing_unit="day",
            rate_cents=1,
        ),
        producer="listings",
    ).model_dump(mode="json")
    del body[missing]
    with pytest.raises(ValueError):
        parse_event(body)


def test_every_billing_money_event_is_registered_and_published_by_billing():
    from contracts.diagram import published_events
    from contracts.events import event_types
    from contracts.topology import BILLING_MONEY_EVENTS

    assert set(BILLING_MONEY_EVENTS) <= set(event_types())
    assert set(BILLING_MONEY_EVENTS) <= set(published_events()["billing"])
