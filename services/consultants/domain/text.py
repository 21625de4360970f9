"""French text analysis (folding, stop words, Snowball's French stemmer) and the skills
vocabulary that profiles and needs are described with."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache

import snowballstemmer

from contracts.errors import InvalidInput
from contracts.errors import field_error as _error
from infra.communes import fold
from services.consultants.skills import SKILLS, Skill

# -- French text analysis ---------------------------------------------------------------

_STOP_WORDS = """
    a au aux avec ce ces cet cette c d de des du elle elles en et eux il ils j je l la le
    les leur leurs lui m ma mais me meme mes moi mon n ne nos notre nous on ou par pas pour
    qu que qui s sa se ses son sur t ta te tes toi ton tu un une vos votre vous y est sont
    etre avoir ete fait faire plus tres tout tous toute toutes autre autres ainsi afin entre
    chez vers sous depuis pendant selon comme dont si sans aussi deja bien peu car donc or ni
    cela ceci celui celle ceux celles quel quelle quels quelles contre avant apres lors
    durant puis ensuite encore chaque
    besoin besoins cherche cherchons recherchons souhaite souhaitons voudrions
    urgent urgence svp merci"""
STOP_WORDS = frozenset(_STOP_WORDS.split())
# Snowball's French algorithm, given folded words so that a need typed without accents meets
# a profile written with them ('securite' and 'sécurité' are one term)
_SNOWBALL = snowballstemmer.stemmer("french")

# What Snowball keeps apart and matching needs together: a trade and its field (agent noun ->
# activity noun), and a few forms its rules miss on unaccented input. Keys and values are
# Snowball stems of folded words; a value is never itself a key (one step, no chains). Each
# entry was measured on both evaluation sets: those that made them worse are left out
# (travaux/travail, publique/public, financière/financier, acheter/achat).
DERIVATIONS: dict[str, str] = {
    # agent nouns -> the activity they practise
    "amenageur": "amenag",  # aménageur, aménageuse -> aménagement
    "conseiller": "conseil",  # conseillère -> conseil (conseiller already is)
    "ingenieur": "ingenier",  # ingénieur(e) -> ingénierie
    "formateur": "format",  # formateur -> formation
    "formatric": "format",  # formatrice
    "acheteur": "achat",  # acheteur -> achat (not acheter: it ranks worse)
    "bailleur": "bail",
    "travailleur": "travail",
    "graphist": "graphism",  # graphiste -> graphisme
    "prevention": "prevent",  # préventionniste -> prévention
    "informaticien": "informat",  # informaticien(ne) -> informatique
    "jurist": "jurid",  # juriste -> juridique
    "technicien": "techniqu",  # technicien(ne) -> technique
    "electricien": "electricit",  # électricien -> électricité
    "hydraulicien": "hydraul",
    "geomaticien": "geomat",
    "mediateur": "mediat",  # médiateur -> médiation
    "traducteur": "traduct",
    "traductric": "traduct",
    "instructeur": "instruct",
    "developpeur": "developp",
    "redacteur": "redact",
    "auditeur": "audit",
    "controleur": "control",
    "ecologu": "ecolog",  # écologue -> écologie
    "sociologu": "sociolog",
    "jardini": "jardin",  # jardinier, jardinage -> jardin
    "jardinag": "jardin",
    "plombi": "plomber",  # plombier -> plomberie
    "menuisi": "menuiser",  # menuisier -> menuiserie
    "bibliothecair": "bibliothequ",  # bibliothécaire -> bibliothèque
    "secretair": "secretariat",
    "architectur": "architect",
    "comptabilit": "comptabl",  # comptabilité -> comptable
    # forms Snowball leaves apart once the accents are folded
    "cheff": "chef",  # cheffe
    "sportiv": "sportif",  # sportive
    "emplois": "emploi",
    "commiss": "comm",  # commission (commissions is comm)
    "paysager": "paysag",  # paysagère -> paysage
    "foncier": "fonci",  # foncière -> foncier
}


@lru_cache(maxsize=100_000)  # bounded: needs bring words no profile has
def stem(word: str) -> str:
    """The term a folded, lower-case word is indexed under: Snowball's stem, then the
    derivation table ('ingénieur' and 'ingénierie' meet)."""
    stemmed = _SNOWBALL.stemWord(word)
    return DERIVATIONS.get(stemmed, stemmed)


def tokens(text: str) -> list[str]:
    """Folded (accents, case, ligatures, punctuation), stop words out, stemmed."""
    return [stem(word) for word in fold(text).split() if word not in STOP_WORDS]


# a word as people write it: letters and digits, hyphens inside ("chasse-neige"), not the
# elided article before an apostrophe ("l'urbanisme" is "urbanisme")
_WRITTEN_WORD = re.compile(r"[^\W_]+(?:-[^\W_]+)*")


def written_forms(text: str) -> dict[str, str]:
    """Each term of `text` -> the word the person wrote for it (accents and case kept, its
    first writing): explanations show their words, not stems ('révision', not 'revision')."""
    forms: dict[str, str] = {}
    for written in _WRITTEN_WORD.findall(text):
        for term in tokens(written):
            forms.setdefault(term, written)
    return forms


# -- the skills vocabulary --------------------------------------------------------------


class Vocabulary:
    """Skills by id, their related skills (both ways) and the phrases that name them."""

    def __init__(self, skills: Iterable[Skill] = SKILLS):
        self.skills: dict[str, Skill] = {s.id: s for s in skills}
        related: dict[str, set[str]] = {sid: set() for sid in self.skills}
        for skill in self.skills.values():
            for other in skill.related:
                if other not in self.skills:
                    raise ValueError(f"skill {skill.id} is related to unknown {other}")
                if other != skill.id:
                    related[skill.id].add(other)
                    related[other].add(skill.id)
        self.related = {sid: frozenset(r) for sid, r in related.items()}
        # what a manager may type for a skill: its id, label or any synonym
        self._names: dict[str, set[str]] = {}
        # the analysed phrases that name each skill, for recognising skills in a need
        self._phrases: dict[tuple[str, ...], set[str]] = {}
        for skill in self.skills.values():
            for name in (skill.id.replace("-", " "), skill.label, *skill.synonyms):
                self._names.setdefault(fold(name), set()).add(skill.id)
                phrase = tuple(tokens(name))
                if phrase:
                    self._phrases.setdefault(phrase, set()).add(skill.id)
        self._longest = max(len(p) for p in self._phrases)
        self.terms: dict[str, tuple[list[str], list[str]]] = {
            s.id: (tokens(s.label), [t for syn in s.synonyms for t in tokens(syn)])
            for s in self.skills.values()
        }

    def label(self, skill_id: str) -> str:
        skill = self.skills.get(skill_id)
        return skill.label if skill else skill_id

    def resolve(self, names: Sequence[str], field: str = "skills") -> list[str]:
        """Skill ids for what a manager typed; unknown names are refused (422) with the
        closest known skills."""
        found: list[str] = []
        errors = []
        for position, name in enumerate(names):
            ids = {name} if name in self.skills else self._names.get(fold(name), set())
            if len(ids) == 1:
                (skill_id,) = ids
                if skill_id not in found:
                    found.append(skill_id)
                continue
            close = sorted(ids) if ids else self.suggestions(name)
            listed = ", ".join(f"{c} ({self.label(c)})" for c in close) or "none"
            problem = "ambiguous" if ids else "unknown"
            errors.append(
                _error(
                    f"{field}.{position}",
                    f"{problem} skill {name!r}; close known skills: {listed}",
                    f"{problem}_skill",
                    suggestions=[{"id": c, "label": self.label(c)} for c in close],
                )
            )
        if errors:
            raise InvalidInput("Unknown skills: see GET /api/v1/consultants/skills", errors)
        return found

    def suggestions(self, name: str, limit: int = 5) -> list[str]:
        """The known skills closest to `name`: by spelling, then by shared words."""
        folded, words = fold(name), set(tokens(name))
        best: dict[str, float] = {}
        for known, ids in self._names.items():
            ratio = difflib.SequenceMatcher(None, folded, known).ratio()
            shared = len(words & set(tokens(known))) / max(len(words), 1)
            closeness = max(ratio, 0.5 + shared / 2 if shared else 0.0)
            for skill_id in ids:
                best[skill_id] = max(best.get(skill_id, 0.0), closeness)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
        return [sid for sid, closeness in ranked[:limit] if closeness >= 0.6]

    def recognise(self, words: Sequence[str]) -> list[str]:
        """Skills named in an analysed text, longest phrase first: 'plan local
        d'urbanisme' is the PLU, not also 'urbanisme'."""
        found: list[str] = []
        i = 0
        while i < len(words):
            for n in range(min(self._longest, len(words) - i), 0, -1):
                ids = self._phrases.get(tuple(words[i : i + n]))
                if ids:
                    found.extend(sorted(s for s in ids if s not in found))
                    i += n
                    break
            else:
                i += 1
        return found


@cache
def vocabulary() -> Vocabulary:
    """The vocabulary shipped with the service (skills.py), built once per process."""
    return Vocabulary()
