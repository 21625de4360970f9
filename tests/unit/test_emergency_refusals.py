"""What a coordinator or an operator is told when an emergency is refused, word for word:
places the communes data does not know, a centre without a position, a declaration beyond
the coordinator's département or EPCI (an EPCI straddling two départements included), an
episode already over, an urgent request approved by hand before its allocation window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from contracts.caller import Caller, Role
from contracts.emergencies import EmergencyDeclaration, Need, Territory
from contracts.errors import Conflict, Forbidden, InvalidInput, ServiceError
from infra.communes import CommuneDirectory, load_directory
from services.bookings.emergency import (
    UrgentRequest,
    allocate,
    check_period,
    check_territory,
    ensure_decidable,
    ensure_may_declare,
    unmet_needs,
)

SAINT_ETIENNE, RENNES = "42218", "35238"  # Rennes has no position in the data
# the CC des Monts du Lyonnais straddles the Loire (Chevrières) and the Rhône
# (Saint-Martin-en-Haut)
MONTS_DU_LYONNAIS, CHEVRIERES, SAINT_MARTIN_EN_HAUT = "200066587", "42062", "69227"
NOW = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return load_directory()


def coordinator(commune: str) -> Caller:
    return Caller(user_id="u1", commune=commune, roles=frozenset({Role.COORDINATOR}))


def refusal(error: ServiceError) -> tuple[str, list[dict]]:
    return error.detail, error.errors


# -- the territory ----------------------------------------------------------------------


def test_unknown_places_are_named_in_the_refusal(directory):
    with pytest.raises(InvalidInput) as refused:
        check_territory(
            Territory(departments=["42", "976"], epcis=[MONTS_DU_LYONNAIS, "999999999"]),
            directory,
        )
    assert refusal(refused.value) == (
        "Unknown places in the territory",
        [
            {
                "field": "territory.departments.1",
                "message": "no commune is in département 976",
                "type": "value_error",
            },
            {
                "field": "territory.epcis.1",
                "message": "no commune belongs to the EPCI 999999999",
                "type": "value_error",
            },
        ],
    )


def test_a_centre_unknown_or_without_a_position_is_refused_with_why(directory):
    with pytest.raises(InvalidInput) as refused:
        check_territory(Territory(centre="99999", radius_km=10), directory)
    assert refusal(refused.value) == (
        "Unknown commune 99999",
        [
            {
                "field": "territory.centre",
                "message": "no commune has INSEE code 99999",
                "type": "value_error",
            }
        ],
    )
    with pytest.raises(InvalidInput) as refused:
        check_territory(Territory(centre=RENNES, radius_km=10), directory)
    assert refusal(refused.value) == (
        "The centre's position is unknown",
        [
            {
                "field": "territory.centre",
                "message": "give départements or EPCIs instead",
                "type": "value_error",
            }
        ],
    )


# -- who declares -----------------------------------------------------------------------


def test_only_an_operator_or_a_coordinator_declares(directory):
    agent = Caller(user_id="u1", commune=SAINT_ETIENNE, roles=frozenset({Role.AGENT}))
    with pytest.raises(Forbidden) as refused:
        ensure_may_declare(agent, Territory(departments=["42"]), directory)
    assert refusal(refused.value) == (
        "Only an operator or a coordinator declares an emergency",
        [],
    )
    both = Caller(user_id="u1", commune="00000", roles=frozenset({Role.OPERATOR, Role.COORDINATOR}))
    ensure_may_declare(both, Territory(departments=["2A"]), directory)


def test_a_coordinator_of_an_unknown_commune_declares_nothing(directory):
    with pytest.raises(Forbidden) as refused:
        ensure_may_declare(coordinator("00000"), Territory(departments=["42"]), directory)
    assert refusal(refused.value) == (
        "A coordinator acts for the territory of a known commune",
        [],
    )


def test_a_coordinator_is_told_each_place_beyond_their_territory(directory):
    territory = Territory(
        departments=["42", "43"],
        # astride the Loire and the Rhône, then Saint-Étienne Métropole (codes in order)
        epcis=["244200770", MONTS_DU_LYONNAIS],
    )
    with pytest.raises(Forbidden) as refused:
        ensure_may_declare(coordinator(SAINT_ETIENNE), territory, directory)
    assert refusal(refused.value) == (
        "A coordinator declares only within Loire or their EPCI",
        [
            {
                "field": "territory.departments.1",
                "message": "43 is not your département",
                "type": "value_error",
            },
            {
                "field": "territory.epcis.0",
                "message": f"the EPCI {MONTS_DU_LYONNAIS} is not yours",
                "type": "value_error",
            },
        ],
    )
    around = Territory(centre="43999", radius_km=10)  # in the Haute-Loire, unknown to the data
    with pytest.raises(Forbidden) as refused:
        ensure_may_declare(coordinator(SAINT_ETIENNE), around, directory)
    assert refused.value.errors == [
        {"field": "territory.centre", "message": "is outside your territory", "type": "value_error"}
    ]


def test_a_coordinator_declares_for_their_epci_across_its_departements(directory):
    ours = coordinator(CHEVRIERES)
    ensure_may_declare(ours, Territory(epcis=[MONTS_DU_LYONNAIS]), directory)
    ensure_may_declare(ours, Territory(centre=SAINT_MARTIN_EN_HAUT, radius_km=5), directory)
    with pytest.raises(Forbidden) as refused:
        ensure_may_declare(ours, Territory(departments=["69"]), directory)
    assert [e["field"] for e in refused.value.errors] == ["territory.departments.0"]


# -- the episode's period ---------------------------------------------------------------


def declared(end: datetime | None) -> EmergencyDeclaration:
    return EmergencyDeclaration(
        name="Tempête",
        territory=Territory(departments=["42"]),
        categories=["deneigement"],
        start=NOW - timedelta(days=1),
        end=end,
    )


def test_an_episode_ending_now_is_already_over():
    with pytest.raises(InvalidInput) as refused:
        check_period(declared(NOW), NOW)
    assert refusal(refused.value) == (
        "The episode is already over",
        [{"field": "end", "message": "is in the past", "type": "in_the_past"}],
    )
    check_period(declared(NOW + timedelta(seconds=1)), NOW)


# -- urgent requests --------------------------------------------------------------------


def test_approving_by_hand_before_the_allocation_says_why():
    with pytest.raises(Conflict) as refused:
        ensure_decidable("approve", undecided_urgent=True)
    assert refusal(refused.value) == (
        "This urgent request is decided with the others of its allocation window first",
        [],
    )
    # the reason the gateway maps to a status (an attribute once the errors carry it)
    error = refused.value
    reason = getattr(error, "reason", None) or error.extra.get("reason")
    assert reason == "allocation_pending"


def test_a_request_waiting_for_units_is_an_unmet_need():
    assert unmet_needs([(Need.COMFORT, "waiting"), (Need.COMFORT, "approved")]) == {Need.COMFORT: 1}
    assert unmet_needs([]) == {}


def request(id: str = "a", *, hours: float = 1, quantity: int = 1) -> UrgentRequest:
    return UrgentRequest(
        id=id,
        start=NOW,
        end=NOW + timedelta(hours=hours),
        quantity=quantity,
        need=Need.COMFORT,
        distance_km=None,
        requested_at=NOW,
    )


def test_an_empty_or_shared_request_is_a_mistake_said_as_such():
    with pytest.raises(ValueError, match=r"^an urgent request's slot must end after it starts$"):
        request(hours=0)
    with pytest.raises(ValueError, match=r"^an urgent request asks for at least one unit$"):
        request(quantity=0)
    with pytest.raises(ValueError, match=r"^two urgent requests share an id$"):
        allocate(2, [], [request("a"), request("a", hours=2)])
