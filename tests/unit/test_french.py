"""Commune names after "de" and "à", and plurals, as a French reader expects them."""

from decimal import Decimal

import pytest

from contracts.french import commune_title, decimal_comma, of_commune, plural, to_commune


@pytest.mark.parametrize(
    ("name", "of", "to"),
    [
        ("Saint-Étienne", "de Saint-Étienne", "à Saint-Étienne"),
        ("Le Chambon-Feugerolles", "du Chambon-Feugerolles", "au Chambon-Feugerolles"),
        ("Les Ulis", "des Ulis", "aux Ulis"),
        ("La Talaudière", "de La Talaudière", "à La Talaudière"),
        ("L'Horme", "de L'Horme", "à L'Horme"),
        ("Andrézieux-Bouthéon", "d'Andrézieux-Bouthéon", "à Andrézieux-Bouthéon"),
        ("Épinal", "d'Épinal", "à Épinal"),
        ("Yssingeaux", "d'Yssingeaux", "à Yssingeaux"),
        ("Firminy", "de Firminy", "à Firminy"),
        ("Lens", "de Lens", "à Lens"),
        ("Le", "de Le", "à Le"),
    ],
)
def test_a_commune_name_contracts_with_its_article(name, of, to):
    assert of_commune(name) == of
    assert to_commune(name) == to


def test_a_commune_without_legal_name_is_titled_by_its_name():
    assert commune_title("Le Chambon-Feugerolles") == "Commune du Chambon-Feugerolles"


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [(0, "jour"), ("0.5", "jour"), (1, "jour"), ("1.5", "jour"), (2, "jours"), (10, "jours")],
)
def test_french_takes_the_singular_below_two(quantity, expected):
    assert plural(quantity, "jour") == expected


def test_an_irregular_plural_is_given():
    assert plural(3, "travail", "travaux") == "travaux"


@pytest.mark.parametrize(
    ("value", "text"),
    [("0.5", "0,5"), ("2.000", "2"), ("1.25", "1,25"), ("10", "10"), ("100.50", "100,5")],
)
def test_numbers_take_a_decimal_comma_and_no_trailing_zeros(value, text):
    assert decimal_comma(Decimal(value)) == text
