"""The communes reference data: loading, lookup, distance, name folding and search ranking."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.communes import CommuneDirectory, fold, great_circle_km, load_directory


@pytest.fixture(scope="module")
def directory() -> CommuneDirectory:
    return load_directory()


def codes(communes) -> list[str]:
    return [c.insee_code for c in communes]


# -- loading and lookup -----------------------------------------------------------------


def test_the_data_file_holds_every_commune(directory):
    assert len(directory) == 34_746


def test_saint_etienne(directory):
    commune = directory.get("42218")
    assert commune.name == "Saint-Étienne"
    assert commune.siren == "214202186"
    assert commune.department_code == "42"
    assert commune.department == "Loire"
    assert "42000" in commune.postal_codes
    assert commune.epci_name == "Saint-Étienne Métropole"
    assert 45 < commune.latitude < 46
    assert 4 < commune.longitude < 5


def test_as_dict_nests_the_epci(directory):
    data = directory.get("42218").as_dict()
    assert data["epci"] == {"siren": "244200770", "name": "Saint-Étienne Métropole"}
    assert data["postal_codes"] == ["42000", "42100", "42230"]


@pytest.mark.parametrize("code", ["99999", "", "42 218", "4221"])
def test_an_unknown_code_is_none(directory, code):
    assert directory.get(code) is None


# -- distances --------------------------------------------------------------------------


def test_saint_etienne_to_le_chambon_feugerolles(directory):
    assert 6.0 < directory.distance_km("42218", "42044") < 7.0
    assert directory.distance_km("42044", "42218") == directory.distance_km("42218", "42044")


def test_distance_to_an_unknown_commune_is_none(directory):
    assert directory.distance_km("42218", "99999") is None
    assert directory.distance_km("99999", "42218") is None


def test_distance_to_a_commune_without_coordinates_is_none(directory):
    without = next((c for c in directory._by_code.values() if c.latitude is None), None)
    if without is None:
        pytest.skip("every commune has coordinates")
    assert directory.distance_km("42218", without.insee_code) is None


latitudes = st.floats(min_value=-90, max_value=90)
longitudes = st.floats(min_value=-180, max_value=180)


@given(latitudes, longitudes, latitudes, longitudes)
def test_great_circle_is_symmetric(lat1, lon1, lat2, lon2):
    assert great_circle_km(lat1, lon1, lat2, lon2) == pytest.approx(
        great_circle_km(lat2, lon2, lat1, lon1), abs=1e-9
    )


@given(latitudes, longitudes)
def test_great_circle_from_a_point_to_itself_is_zero(lat, lon):
    assert great_circle_km(lat, lon, lat, lon) == 0


def test_one_degree_of_meridian_is_about_111_km():
    assert great_circle_km(45, 4, 46, 4) == pytest.approx(111.195, abs=0.01)


# -- folding ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Saint-Étienne", "saint etienne"),
        ("SAINT ETIENNE", "saint etienne"),
        ("L'Haÿ-les-Roses", "l hay les roses"),
        ("  Châlons--en-Champagne ", "chalons en champagne"),
        ("Besançon", "besancon"),
        ("", ""),
    ],
)
def test_fold(text, folded):
    assert fold(text) == folded


# -- search -----------------------------------------------------------------------------


@pytest.mark.parametrize("q", ["Saint-Étienne", "saint etienne", "SAINT-ETIENNE"])
def test_the_exact_name_comes_first(directory, q):
    found = directory.search(q, limit=5)
    assert found[0].insee_code == "42218"
    assert all(fold(c.name).startswith("saint etienne") for c in found)


@pytest.mark.parametrize(("q", "code"), [("Toul", "54528"), ("Nant", "12168")])
def test_an_exact_match_beats_a_more_populous_prefix_match(directory, q, code):
    found = directory.search(q, limit=5)
    assert found[0].insee_code == code
    assert found[1].population > found[0].population


def test_prefix_matches_come_before_substring_matches(directory):
    found = directory.search("seyne", limit=10)
    starts = [fold(c.name).startswith("seyne") for c in found]
    assert starts[0] and not starts[-1]
    assert starts == sorted(starts, reverse=True)


def test_among_equal_matches_the_most_populous_comes_first(directory):
    found = [c for c in directory.search("boulogne", limit=50) if fold(c.name) != "boulogne"]
    found = [c for c in found if fold(c.name).startswith("boulogne")]
    assert len(found) >= 5
    populations = [c.population for c in found]
    assert populations == sorted(populations, reverse=True)
    assert found[0].name == "Boulogne-Billancourt"


def test_department_filter(directory):
    found = directory.search("saint", department="42", limit=50)
    assert len(found) == 50
    assert {c.department_code for c in found} == {"42"}
    assert found[0].insee_code == "42218"


def test_department_alone_lists_its_communes_by_population(directory):
    found = directory.search(None, department="2A", limit=5)
    assert found[0].name == "Ajaccio"
    assert {c.department_code for c in found} == {"2A"}
    populations = [c.population for c in found]
    assert populations == sorted(populations, reverse=True)


def test_code_prefix(directory):
    found = directory.search("4221", limit=20)
    assert len(found) == 10  # 42210 … 42219
    assert all(c.insee_code.startswith("4221") for c in found)
    assert found[0].insee_code == "42218"


def test_a_full_code_finds_its_commune(directory):
    assert codes(directory.search("42218")) == ["42218"]


def test_limit_is_respected(directory):
    assert len(directory.search("saint", limit=7)) == 7


def test_no_match_is_an_empty_list(directory):
    assert directory.search("zzzqqq") == []


@pytest.mark.parametrize("q, name", [("2A004", "Ajaccio"), ("2b033", "Bastia")])
def test_corsican_codes_are_found(directory, q, name):
    assert directory.search(q)[0].name == name


@pytest.mark.parametrize("q", ["vandoeuvre", "Vandœuvre-lès-Nancy"])
def test_ligatures_match_their_two_letters(directory, q):
    assert directory.search(q)[0].name == "Vandœuvre-lès-Nancy"
