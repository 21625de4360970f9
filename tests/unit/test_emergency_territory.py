"""Emergency episodes: the declaration's validation, which communes a territory holds
(départements with Corsica and overseas, EPCIs, a radius), which requests an episode covers,
and who may declare one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from contracts.caller import Caller, Role
from contracts.emergencies import (
    EmergencyDeclaration,
    EmergencyDeclared,
    EmergencySnapshot,
    Need,
    Territory,
)
from contracts.errors import Forbidden, InvalidInput
from contracts.events import parse_event
from infra.communes import CommuneDirectory, load_directory
from services.bookings.emergency import (
    check_territory,
    covering,
    covers,
    department_of,
    ensure_may_declare,
    in_force,
    in_territory,
)

SAINT_ETIENNE, CHAMBON, MONISTROL, ROANNE, LYON = "42218", "42044", "43137", "42187", "69123"
AJACCIO, BASTIA = "2A004", "2B033"
RENNES = "35238"  # no position in the data
SAINT_ETIENNE_METROPOLE, ROANNAIS = "244200770", "200035731"
DECLARED = datetime(2026, 12, 7, 5, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return load_directory()


def episode(territory: dict, categories=("deneigement",), end=None) -> EmergencySnapshot:
    return EmergencySnapshot(
        emergency_id="e1",
        name="Épisode neigeux Loire — décembre 2026",
        territory=Territory(**territory),
        categories=list(categories),
        start=DECLARED,
        end=end,
        declared_by_commune=SAINT_ETIENNE,
    )


# -- the declaration --------------------------------------------------------------------


def declaration(**changes) -> dict:
    return {
        "name": "Épisode neigeux Loire — décembre 2026",
        "territory": {"departments": ["42", "43"]},
        "categories": ["deneigement", "voirie"],
        "start": "2026-12-07T06:30:00+01:00",
    } | changes


def test_a_declaration_needs_no_end():
    declared = EmergencyDeclaration.model_validate(declaration())
    assert declared.end is None
    assert declared.start == DECLARED


@pytest.mark.parametrize(
    "changes",
    [
        {"end": "2026-12-07T06:30:00+01:00"},  # not after start
        {"start": "2026-12-07T06:30:00"},  # no offset: which 6:30?
        {"categories": []},
        {"categories": ["neige"]},
        {"name": "  "},
        {"territory": {}},
        {"territory": {"departments": ["20"]}},  # Corsica is 2A and 2B since 1976
        {"territory": {"departments": ["42"], "centre": SAINT_ETIENNE, "radius_km": 10}},
        {"territory": {"centre": SAINT_ETIENNE}},
        {"territory": {"centre": SAINT_ETIENNE, "radius_km": 500}},
        {"territory": {"epcis": ["24420077"]}},
    ],
)
def test_a_bad_declaration_is_refused(changes):
    with pytest.raises(ValidationError):
        EmergencyDeclaration.model_validate(declaration(**changes))


def test_codes_are_kept_once_in_order():
    declared = EmergencyDeclaration.model_validate(
        declaration(
            territory={"departments": ["43", "2A", "42", "43"]},
            categories=["voirie", "deneigement", "voirie"],
        )
    )
    assert declared.territory.departments == ["2A", "42", "43"]
    assert declared.categories == ["deneigement", "voirie"]


def test_needs_are_ranked_safety_of_people_first():
    assert sorted(Need, key=lambda n: n.rank) == [
        Need.SAFETY_OF_PEOPLE,
        Need.MAIN_ROADS,
        Need.SERVICE_CONTINUITY,
        Need.COMFORT,
    ]


def test_the_declared_event_goes_over_the_wire():
    event = EmergencyDeclared.new(
        episode({"epcis": [SAINT_ETIENNE_METROPOLE]}), producer="bookings"
    )
    parsed = parse_event(event.model_dump(mode="json"))
    assert parsed == event and parsed.type == "emergency.declared"


def test_unknown_places_are_refused_by_field(directory):
    with pytest.raises(InvalidInput) as refused:
        check_territory(Territory(departments=["42", "976"], epcis=["123456789"]), directory)
    assert [e["field"] for e in refused.value.errors] == [
        "territory.departments.1",
        "territory.epcis.0",
    ]


def test_a_centre_without_a_position_is_refused(directory):
    with pytest.raises(InvalidInput):
        check_territory(Territory(centre=RENNES, radius_km=10), directory)
    with pytest.raises(InvalidInput):
        check_territory(Territory(centre="99999", radius_km=10), directory)
    check_territory(Territory(centre=SAINT_ETIENNE, radius_km=10), directory)
    check_territory(Territory(departments=["2A", "42"], epcis=[ROANNAIS]), directory)


# -- territory membership ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "department"),
    [(SAINT_ETIENNE, "42"), (AJACCIO, "2A"), (BASTIA, "2B"), ("97101", "971"), ("01001", "01")],
)
def test_the_department_is_read_from_the_insee_code(code, department):
    assert department_of(code) == department


def test_a_department_holds_its_communes(directory):
    loire = Territory(departments=["42"])
    assert in_territory(loire, SAINT_ETIENNE, directory)
    assert in_territory(loire, ROANNE, directory)
    assert not in_territory(loire, MONISTROL, directory)


def test_corsica_is_two_departments(directory):
    south = Territory(departments=["2A"])
    assert in_territory(south, AJACCIO, directory)
    assert not in_territory(south, BASTIA, directory)
    assert in_territory(Territory(departments=["2A", "2B"]), BASTIA, directory)


def test_an_overseas_department_holds_its_communes_even_unknown_to_the_data(directory):
    assert in_territory(Territory(departments=["971"]), "97101", directory)
    assert not in_territory(Territory(departments=["972"]), "97101", directory)


def test_an_epci_holds_its_member_communes(directory):
    metropole = Territory(epcis=[SAINT_ETIENNE_METROPOLE])
    assert in_territory(metropole, CHAMBON, directory)
    assert not in_territory(metropole, ROANNE, directory)
    assert in_territory(Territory(epcis=[SAINT_ETIENNE_METROPOLE, ROANNAIS]), ROANNE, directory)
    assert not in_territory(metropole, "99999", directory)


def test_departments_and_epcis_add_up(directory):
    both = Territory(departments=["43"], epcis=[SAINT_ETIENNE_METROPOLE])
    assert in_territory(both, MONISTROL, directory)
    assert in_territory(both, CHAMBON, directory)
    assert not in_territory(both, ROANNE, directory)


def test_a_radius_holds_the_communes_within_it_across_departments(directory):
    around = Territory(centre=SAINT_ETIENNE, radius_km=25)  # Monistrol: 23.1 km, Lyon: 49.9
    assert in_territory(around, SAINT_ETIENNE, directory)
    assert in_territory(around, CHAMBON, directory)
    assert in_territory(around, MONISTROL, directory)
    assert not in_territory(around, LYON, directory)
    assert not in_territory(Territory(centre=SAINT_ETIENNE, radius_km=23), MONISTROL, directory)


def test_around_a_centre_a_commune_without_a_position_is_outside(directory):
    assert not in_territory(Territory(centre="35047", radius_km=200), RENNES, directory)
    assert in_territory(Territory(centre=RENNES, radius_km=1), RENNES, directory)


# -- coverage ---------------------------------------------------------------------------


def test_an_episode_covers_requests_of_its_borrowers_categories_and_period(directory):
    snow = episode({"departments": ["42"]}, end=DECLARED + timedelta(days=3))
    today = dict(start=DECLARED + timedelta(hours=1), end=DECLARED + timedelta(days=1))
    args = dict(directory=directory, **today)
    assert covers(snow, borrower_commune=SAINT_ETIENNE, category="deneigement", **args)
    # the borrower suffers the emergency, wherever the lender is
    assert not covers(snow, borrower_commune=MONISTROL, category="deneigement", **args)
    assert not covers(snow, borrower_commune=SAINT_ETIENNE, category="salles", **args)


def test_a_slot_meets_the_episode_or_not(directory):
    snow = episode({"departments": ["42"]}, end=DECLARED + timedelta(days=3))
    args = dict(borrower_commune=SAINT_ETIENNE, category="deneigement", directory=directory)
    before = dict(start=DECLARED - timedelta(days=1), end=DECLARED)  # ends as it starts
    after = dict(start=DECLARED + timedelta(days=3), end=DECLARED + timedelta(days=4))
    across = dict(start=DECLARED - timedelta(hours=1), end=DECLARED + timedelta(minutes=1))
    assert not covers(snow, **before, **args)
    assert not covers(snow, **after, **args)
    assert covers(snow, **across, **args)
    open_ended = episode({"departments": ["42"]})
    assert covers(open_ended, **after, **args)


def test_in_force_from_start_until_end():
    snow = episode({"departments": ["42"]}, end=DECLARED + timedelta(days=3))
    assert not in_force(snow, DECLARED - timedelta(seconds=1))
    assert in_force(snow, DECLARED)
    assert not in_force(snow, DECLARED + timedelta(days=3))
    assert in_force(episode({"departments": ["42"]}), DECLARED + timedelta(days=300))


def test_the_earliest_covering_episode_is_the_one(directory):
    later = episode({"departments": ["42"]}).model_copy(
        update={"emergency_id": "later", "start": DECLARED + timedelta(hours=1)}
    )
    flood = episode({"departments": ["42"]}, categories=["voirie"])
    snow = episode({"departments": ["42"]})
    args = dict(
        borrower_commune=CHAMBON,
        category="deneigement",
        start=DECLARED + timedelta(hours=2),
        end=DECLARED + timedelta(hours=5),
        directory=directory,
    )
    assert covering([later, flood, snow], **args) is snow
    assert covering([flood], **args) is None


# -- who declares -----------------------------------------------------------------------


def someone(commune: str, *roles: Role) -> Caller:
    return Caller(user_id="u1", commune=commune, roles=frozenset(roles))


def test_an_operator_declares_anywhere(directory):
    ensure_may_declare(someone("00000", Role.OPERATOR), Territory(departments=["2A"]), directory)


@pytest.mark.parametrize("role", [Role.AGENT, Role.MANAGER, Role.FINANCE])
def test_communes_do_not_declare(directory, role):
    with pytest.raises(Forbidden):
        ensure_may_declare(someone(SAINT_ETIENNE, role), Territory(departments=["42"]), directory)


@pytest.mark.parametrize(
    "territory",
    [
        {"departments": ["42"]},
        {"epcis": [SAINT_ETIENNE_METROPOLE, ROANNAIS]},  # both within the Loire
        {"centre": ROANNE, "radius_km": 30},
    ],
)
def test_a_coordinator_declares_within_their_department(directory, territory):
    ensure_may_declare(someone(SAINT_ETIENNE, Role.COORDINATOR), Territory(**territory), directory)


@pytest.mark.parametrize(
    ("territory", "field"),
    [
        ({"departments": ["42", "43"]}, "territory.departments.1"),
        ({"epcis": ["200073427"]}, "territory.epcis.0"),  # Marches du Velay, Haute-Loire
        ({"centre": MONISTROL, "radius_km": 30}, "territory.centre"),
    ],
)
def test_a_coordinator_does_not_declare_beyond(directory, territory, field):
    with pytest.raises(Forbidden) as refused:
        ensure_may_declare(
            someone(SAINT_ETIENNE, Role.COORDINATOR), Territory(**territory), directory
        )
    assert [e["field"] for e in refused.value.errors] == [field]
