"""The return form's damage lines: the borrower's reserve on a damage goes with it, as
`contest`; a line left without one has none."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from contracts.bookings import ReturnReport
from gateway.pages.bookings import damages_from


def form(*lines: tuple[str, str, str]) -> MultiDict:
    return MultiDict(
        [
            (field, value)
            for line in lines
            for field, value in zip(
                ("dommage_description", "dommage_montant", "dommage_reserve"), line, strict=True
            )
        ]
    )


def test_a_reserve_goes_with_its_damage_and_only_with_it():
    damages = damages_from(
        form(
            ("Rétroviseur gauche", "150", "  Déjà fêlé au départ "),
            ("Pneu crevé", "80,50", ""),
            ("", "", "une réserve sans dommage n'est rien"),
        )
    )
    assert damages == [
        {
            "description": "Rétroviseur gauche",
            "amount_cents": 15000,
            "contest": "Déjà fêlé au départ",
        },
        {"description": "Pneu crevé", "amount_cents": 8050},
    ]
    report = ReturnReport.model_validate({"condition": "Rayé", "damages": damages})
    assert [d.contest for d in report.damages] == ["Déjà fêlé au départ", None]


def test_a_form_from_before_the_reserve_field_still_reads():
    old = MultiDict([("dommage_description", "Pneu crevé"), ("dommage_montant", "80")])
    assert damages_from(old) == [{"description": "Pneu crevé", "amount_cents": 8000}]
