"""The experts page's words beside each bar, and the floor under which a candidate is not
shown."""

from __future__ import annotations

from gateway.pages.experts import RELEVANCE_FLOOR, reasons, relevance
from services.consultants.domain.text import written_forms


def explanation(matched, asked, text=None, components=None, weights=None) -> dict:
    return {
        "skills": {
            "asked": asked,
            "matched": [{"skill": s, "via": via, "through": s} for s, via in matched],
            "missing": [s for s in asked if s not in {m for m, _ in matched}],
        },
        "text": text or {"matched_terms": [], "matched_words": []},
        "availability": {"asked": False},
        "rate": {"day_rate_cents": 45000, "max_day_rate_cents": None, "within": True},
        "components": components or {},
        "weights": weights or {},
    }


def test_the_skills_words_count_as_the_bar_does():
    # the bar: (1 + ½) / 2 = 75 %; the words say why, not "2 compétences sur 2"
    said = reasons(explanation([("plu", "direct"), ("scot", "related")], ["plu", "scot"]))
    assert said["skills"] == "1 compétence sur 2, 1 voisine (comptée à moitié)"
    said = reasons(explanation([("plu", "direct"), ("scot", "direct")], ["plu", "scot"]))
    assert said["skills"] == "2 compétences sur 2"
    said = reasons(explanation([], ["cybersecurite"]))
    assert said["skills"] == "0 compétence sur 1 ; manque : cybersecurite"


def test_matched_words_are_shown_as_written():
    text = {"matched_terms": ["revision", "rancongiciel"]}
    text["matched_words"] = ["révision", "rançongiciel"]
    assert reasons(explanation([], [], text))["text"] == "mots trouvés : révision, rançongiciel"
    forms = written_forms("Révision du PLU après l'attaque par rançongiciel du chasse-neige")
    assert forms["revis"] == "Révision" and forms["plu"] == "PLU"
    assert "rançongiciel" in forms.values() and "chasse-neige" in forms.values()
    assert not any("'" in word for word in forms.values())  # "l'attaque" is "attaque"


def test_the_relevance_is_the_skills_and_text_share_of_the_score():
    weights = {"skills": 0.4, "text": 0.3, "distance": 0.3}
    lawyer = explanation([], ["cybersecurite"], components={"skills": 0.0, "text": 0.2})
    lawyer["weights"] = weights
    assert relevance(lawyer) < RELEVANCE_FLOOR  # near, but no answer to the need
    admin = explanation([], [], components={"skills": 1.0, "text": 0.5, "distance": 0.1})
    admin["weights"] = weights
    assert relevance(admin) == (0.4 * 1.0 + 0.3 * 0.5) / 0.7
    assert relevance(explanation([], [], weights={"distance": 1.0})) is None  # nothing asked
