"""The Comptabilité page says in French which imputation was refused and why."""

from __future__ import annotations

import pytest

from contracts.accounting import ImputationInput
from contracts.errors import InvalidInput
from gateway.pages.accounting import refused_imputations
from services.billing import accounting


def test_a_refused_imputation_is_named_by_category_side_and_rule():
    items = [
        {"category": "salles", "side": "titre", "chapter": "75", "account": "752"},
        {"category": "deneigement", "side": "mandat", "chapter": "70", "account": "7083"},
        {"category": "personnel", "side": "titre", "chapter": "", "account": "9999"},
    ]
    with pytest.raises(InvalidInput) as refused:
        accounting.ensure_imputations([ImputationInput(**item) for item in items])
    assert refused_imputations(refused.value, items) == [
        "Déneigement et viabilité hivernale, mandats : le compte 7083 n'est pas un compte "
        "de mandats",
        "Mise à disposition de personnel (experts), titres de recettes : le compte 9999 n'est "
        "pas un compte de la nomenclature M57",
    ]
