"""Consultants' text analysis and skills vocabulary, word by word: which words Snowball's
French stemmer and the derivation table make one term, and how a vocabulary relates skills,
resolves what a manager typed and refuses an unknown or ambiguous name."""

from __future__ import annotations

import pytest

from contracts.errors import InvalidInput
from infra.communes import fold
from services.consultants.domain.text import DERIVATIONS, Vocabulary, stem, tokens
from services.consultants.skills import Skill

# words that must be one term: plurals and feminines (Snowball), a trade and its field (the
# derivation table), with or without their accents
SAME_TERM = [
    ("marchés publics", "marché public"),
    ("urbaniste", "urbanisme"),
    ("animateur", "animatrice", "animation"),
    ("aménageur", "aménageuse", "aménagement", "aménagements", "aménager"),
    ("conseiller", "conseillère", "conseil"),
    ("ingénieur", "ingénieure", "ingénierie"),
    ("formateur", "formatrice", "formation"),
    ("informaticien", "informaticienne", "informatique"),
    ("juriste", "juridique"),
    ("technicien", "technicienne", "technique"),
    ("paysagiste", "paysagère", "paysage"),
    ("préventionniste", "prévention"),
    ("comptable", "comptabilité"),
    ("bibliothécaire", "bibliothèque"),
    ("cheffe", "chef"),
    ("sécurité", "securite", "SÉCURITÉ"),
    ("culturelle", "culturels", "culturel"),
]
# kept apart on purpose: conflating them made the evaluation sets rank worse (measured)
APART = [("travaux", "travail"), ("publique", "public"), ("acheter", "achat")]


@pytest.mark.parametrize("words", SAME_TERM, ids=lambda words: words[0])
def test_words_of_one_family_are_one_term(words):
    assert len({tuple(tokens(w)) for w in words}) == 1, {w: tokens(w) for w in words}


@pytest.mark.parametrize("words", APART, ids=lambda words: words[0])
def test_words_the_measure_kept_apart_stay_apart(words):
    assert len({tuple(tokens(w)) for w in words}) == len(words)


def test_the_derivation_table_takes_one_step_from_snowballs_own_stems():
    # a value that were also a key would chain; a key Snowball never produces is dead
    assert not set(DERIVATIONS.values()) & set(DERIVATIONS)
    assert stem(fold("aménageur")) == stem(fold("aménagement")) == "amenag"
    assert stem("bus") == "bus" and stem("x4x") == "x4x"  # short or not a word: as it is


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
    assert vocabulary.terms["eclairage"] == (["eclairag", "public"], ["lumier", "rout"])
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
