"""Consultants' text analysis and skills vocabulary, word by word: the light stemmer's
endings, and how a vocabulary relates skills, resolves what a manager typed and refuses
an unknown or ambiguous name."""

from __future__ import annotations

import pytest

from contracts.errors import InvalidInput
from services.consultants.domain.text import Vocabulary, stem, tokens
from services.consultants.skills import Skill

STEMS = {
    # irregular plurals, -eaux, -aux, -s and -x
    "travaux": "travail",
    "yeux": "oeil",
    "eaux": "eau",
    "chateaux": "chateau",
    "chevaux": "cheval",
    "journaux": "journal",
    "publics": "public",
    "classes": "clas",
    # the derivational endings, each at its shortest stem
    "etablissement": "etabl",
    "amenagement": "amenag",
    "animatrice": "anim",
    "animateur": "anim",
    "animation": "anim",
    "juridique": "juridic",
    "nationalisme": "national",
    "urbaniste": "urban",
    "urbanisme": "urban",
    "associative": "associatif",
    "collective": "collectif",
    "financiere": "financi",
    "ouvriere": "ouvri",
    "ingenierie": "ingeni",
    # feminine -e, -er, doubled consonants
    "chargee": "charg",
    "sociale": "social",
    "culturelle": "culturel",
    "culturels": "culturel",
    "comptable": "comptabl",
    "bibliothecaire": "bibliothecair",
    "pilier": "pili",
    "marches": "march",
    # short or not alphabetic: left as they are
    "bus": "bus",
    "gaz": "gaz",
    "ss": "ss",
    "ivre": "ivre",
    "vie": "vie",
    "x4x": "x4x",
    "mission": "mission",
    # at each rule's edge. Four letters: a plural loses its -s, and nothing else is touched
    "mers": "mer",
    "cafe": "cafe",
    "zones": "zone",
    # -aux is -al from five letters on; "baux" only loses its -x
    "baux": "bau",
    "locaux": "local",
    "poteaux": "poteau",
    # each ending at the shortest stem it leaves (one letter shorter, it stays)
    "bannissement": "bann",
    "placement": "plac",
    "coalition": "coal",
    "civique": "civic",
    "tourisme": "tour",
    "touriste": "tour",
    "danseuse": "dans",
    "danseur": "dans",
    "active": "actif",
    "saisie": "sais",
    "parisienne": "parisien",
    "parisiennes": "parisien",
    "boulangerie": "boulang",
    # -er goes from six letters on, a doubled last letter from five on
    "hiver": "hiver",
    "belle": "bell",
    # a feminine plural past participle loses its -s and two -e, not a third ("recréées")
    "recreees": "recre",
}


@pytest.mark.parametrize(("word", "stemmed"), STEMS.items())
def test_each_ending_of_the_light_stemmer(word, stemmed):
    assert stem(word) == stemmed


def test_words_are_folded_stop_words_dropped_and_stemmed():
    assert tokens("Le Plan Local d'Urbanisme des Marchés publics") == [
        "plan",
        "local",
        "urban",
        "march",
        "public",
    ]


def skills(*more: Skill) -> list[Skill]:
    return [
        Skill("voirie", "Voirie", "technique", ("routes", "chaussées"), ("eclairage",)),
        Skill("eclairage", "Éclairage public", "technique", ("lumière", "routes")),
        Skill("plu", "Plan local d'urbanisme", "urbanisme", ("PLU",), ("plu",)),
        *more,
    ]


def test_related_skills_go_both_ways_and_never_to_themselves():
    vocabulary = Vocabulary(skills())
    assert vocabulary.related == {
        "voirie": frozenset({"eclairage"}),
        "eclairage": frozenset({"voirie"}),
        "plu": frozenset(),
    }
    with pytest.raises(ValueError, match=r"^skill x is related to unknown nowhere$"):
        Vocabulary(skills(Skill("x", "X", "technique", (), ("nowhere",))))


def test_a_skill_is_named_by_its_id_label_or_a_synonym_in_any_case():
    vocabulary = Vocabulary(skills())
    assert vocabulary.resolve(["voirie", "ÉCLAIRAGE PUBLIC", "lumiere", "plu", "Voirie"]) == [
        "voirie",
        "eclairage",
        "plu",
    ]
    assert vocabulary.label("plu") == "Plan local d'urbanisme"
    assert vocabulary.label("gone") == "gone"
    assert vocabulary.terms["eclairage"] == (["eclairag", "public"], ["lumi", "rout"])
    assert vocabulary.recognise(tokens("révision du plan local d'urbanisme et voirie")) == [
        "plu",
        "voirie",
    ]


def test_an_ambiguous_or_unknown_skill_is_refused_with_the_closest_ones():
    vocabulary = Vocabulary(skills())
    with pytest.raises(InvalidInput) as raised:
        vocabulary.resolve(["voirie", "routes", "eclairag", "astrophysique"], field="need")
    assert raised.value.detail == "Unknown skills: see GET /api/v1/consultants/skills"
    ambiguous, close, unknown = raised.value.errors
    assert ambiguous == {
        "field": "need.1",
        "message": "ambiguous skill 'routes'; close known skills: "
        "eclairage (Éclairage public), voirie (Voirie)",
        "type": "ambiguous_skill",
        "suggestions": [
            {"id": "eclairage", "label": "Éclairage public"},
            {"id": "voirie", "label": "Voirie"},
        ],
    }
    assert close["field"] == "need.2" and close["type"] == "unknown_skill"
    assert close["message"] == (
        "unknown skill 'eclairag'; close known skills: eclairage (Éclairage public)"
    )
    assert unknown["message"] == "unknown skill 'astrophysique'; close known skills: none"
    assert unknown["suggestions"] == []
