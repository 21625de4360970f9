"""French that reads right wherever a commune is named or a thing is counted: shared by the
documents (invoices, agreements, mails) and the pages, so that both say it alike."""

from __future__ import annotations

from decimal import Decimal

VOWELS = frozenset("AEIOUYÂÀÉÈÊËÎÏÔÖÛÙÜŒÆaeiouyâàéèêëîïôöûùüœæ")
# the article a commune's name starts with, and what "de" and "à" contract it to
CONTRACTIONS = {"Le": ("du", "au"), "Les": ("des", "aux")}


def _split_article(name: str) -> tuple[str, str]:
    first, _, rest = name.partition(" ")
    if first in CONTRACTIONS and rest:
        return first, rest
    return "", name


def of_commune(name: str) -> str:
    """'de Saint-Étienne', 'du Chambon-Feugerolles', 'des Ulis', 'de La Talaudière',
    "de L'Horme", "d'Andrézieux-Bouthéon": what follows "la commune …" or "Mairie …"."""
    article, rest = _split_article(name)
    if article:
        return f"{CONTRACTIONS[article][0]} {rest}"
    if name[:1] in VOWELS:
        return f"d'{name}"
    return f"de {name}"


def to_commune(name: str) -> str:
    """'à Saint-Étienne', 'au Chambon-Feugerolles', 'aux Ulis', 'à La Talaudière'."""
    article, rest = _split_article(name)
    if article:
        return f"{CONTRACTIONS[article][1]} {rest}"
    return f"à {name}"


def commune_title(name: str) -> str:
    """A commune's legal name when its billing profile gives none:
    'Commune du Chambon-Feugerolles'."""
    return f"Commune {of_commune(name)}"


def plural(
    quantity: Decimal | int | float | str, singular: str, plural_form: str | None = None
) -> str:
    """French takes the singular below 2 ('0,5 jour', '1,5 jour', '0 facture'), the plural
    from 2 on; the plural is the singular plus 's' unless given."""
    if Decimal(str(quantity)) < 2:
        return singular
    return plural_form if plural_form is not None else f"{singular}s"


def decimal_comma(quantity: Decimal | int | float | str) -> str:
    """A number as French writes it: '0,5', '2', '1,25' (no trailing zeros, no exponent)."""
    value = Decimal(str(quantity))
    text = format(value.normalize(), "f") if value != value.to_integral_value() else f"{value:.0f}"
    return text.replace(".", ",")
