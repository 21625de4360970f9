"""The listing JSON built straight from a row is exactly what ListingView would give."""

from datetime import UTC, datetime

from contracts.listings import Blackout, ListingView
from services.listings.models import ListingRow
from services.listings.repository import VIEW_FIELDS, view_from, view_of


def test_the_fast_view_is_the_documented_view():
    row = ListingRow(
        id="7c6f3a52-0000-4000-8000-000000000001",
        owner_commune="42044",
        latitude=45.39,
        longitude=4.32,
        status="published",
        revision=3,
        title="Chasse-neige",
        description="Lame 3 m",
        category="deneigement",
        kind="vehicle",
        pricing_unit="day",
        rate_cents=42000,
        currency="EUR",
        deposit_cents=150000,
        quantity=2,
        min_duration=1,
        max_duration=None,
        lead_time_days=0,
        with_operator=True,
        operator_rate_cents=32000,
        cancellation_notice_days=1,
        late_cancellation_fee_cents=10000,
        early_pickup=True,
        late_fee_per_day_cents=5000,
        rules="Plein au retour",
        auto_approve_in_emergencies=False,
        contact={
            "name": "Jean Morel",
            "role": "responsable du parc",
            "phone": "+33477123456",
            "email": "parc@mairie-chambon.fr",
        },
        pickup_address="Centre technique, 12 rue de la Forge",
        pickup_instructions="Sonner au portail B",
        search_text="",
        created_at=datetime(2026, 11, 27, 10, 0, 0, 123456, tzinfo=UTC),
        updated_at=datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
    )
    closure = Blackout(
        id="b1",
        start=datetime(2026, 12, 24, 23, tzinfo=UTC),
        end=datetime(2026, 12, 26, 23, tzinfo=UTC),
        reason="Noël",
    )
    fast = view_of(row, [closure], distance_km=6.47643)
    assert ListingView.model_validate(fast).model_dump(mode="json") == fast
    assert fast["distance_km"] == 6.48
    assert fast["owner_commune_name"] == "Le Chambon-Feugerolles"
    assert fast["contact"]["phone"] == "+33477123456"
    assert fast["pickup_address"] == "Centre technique, 12 rue de la Forge"
    # a search's item, made from the row's values alone, sends every documented field too
    # (generated clients read each one the schema lists)
    item = view_from({name: getattr(row, name) for name in VIEW_FIELDS})
    assert set(item) == set(ListingView.model_fields)
    assert item["photos"] == []
