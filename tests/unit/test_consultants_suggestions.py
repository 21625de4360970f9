"""The known skills suggested for a name a manager mistyped: by spelling, then by shared
words, closest first, at most five, none below the threshold; skills recognised in a need
by phrases of every length; and the stop words at both ends of their list."""

from __future__ import annotations

from services.consultants.domain.text import Vocabulary, tokens
from services.consultants.skills import Skill


def test_the_first_and_last_stop_words_are_dropped():
    assert tokens("A merci, chaque urgence") == []
    assert tokens("à la voirie") == ["voir"]


def skills() -> list[Skill]:
    return [
        Skill("voirie", "Voirie", "technique", ("routes", "chaussées")),
        Skill("eclairage", "Éclairage public", "technique", ("lumière",)),
        Skill("plu", "Plan local d'urbanisme", "urbanisme", ("PLU",)),
        Skill("urbanisme", "Urbanisme", "urbanisme", ("droit des sols",)),
        Skill("paie", "Paie", "rh", ("salaires", "bulletins de paie")),
        Skill("voies", "Voies vertes", "technique", ()),
        Skill("voile", "Voile", "sport", ()),
    ]


def test_suggestions_by_spelling_closest_first_then_by_id():
    vocabulary = Vocabulary(skills())
    # "voirie" 0.92 (and the same stem), "voies" and "voile" 0.80
    assert vocabulary.suggestions("voire") == ["voirie", "voies", "voile"]
    assert vocabulary.suggestions("voire", limit=2) == ["voirie", "voies"]
    # "voies" and "voile" 0.75, "voirie" 0.67
    assert vocabulary.suggestions("voi") == ["voies", "voile", "voirie"]
    # "voirie" at exactly the threshold (3 letters shared of 4 + 6) is suggested
    assert vocabulary.suggestions("voiz") == ["voies", "voile", "voirie"]
    assert vocabulary.suggestions("astrophysique") == []


def test_suggestions_by_a_shared_word_when_the_spelling_is_far():
    vocabulary = Vocabulary(skills())
    # one word of two shared: 0.75, above the spelling of any name
    assert vocabulary.suggestions("urbanisme commercial") == ["plu", "urbanisme"]
    assert vocabulary.suggestions("paie des agents") == ["paie"]
    # one word of five shared: exactly the threshold
    assert vocabulary.suggestions("urbanisme foot danse théâtre cinéma") == ["plu", "urbanisme"]
    # one word of one shared, as close as it gets, before a close spelling
    assert vocabulary.suggestions("voiries") == ["voirie", "voies", "voile"]


def test_a_skill_is_suggested_once_by_its_closest_name():
    vocabulary = Vocabulary(skills())
    # "eclairage" by spelling (0.64) and by a shared word; "voies" by a shared word only
    assert vocabulary.suggestions("éclairage des voies") == ["eclairage", "voies"]


def test_at_most_five_suggestions_unless_asked_for_more():
    vocabulary = Vocabulary(
        Skill(f"gestion-{n}", f"Gestion {name}", "gestion", ())
        for n, name in enumerate(["budget", "dette", "paie", "stock", "flotte", "parc", "eau"])
    )
    assert vocabulary.suggestions("gestion") == [f"gestion-{n}" for n in range(5)]
    assert vocabulary.suggestions("gestion", limit=7) == [f"gestion-{n}" for n in range(7)]


def test_skills_are_recognised_by_phrases_of_every_length_up_to_the_longest():
    vocabulary = Vocabulary(skills())  # the longest phrase: "plan local urban"
    words = tokens("éclairage public et bulletins de paie, voiries, droit des sols")
    assert vocabulary.recognise(words) == ["eclairage", "paie", "voirie", "urbanisme"]
    assert vocabulary.recognise(tokens("lumière des voies vertes")) == ["eclairage", "voies"]
