"""An example body for every operation that takes one, shown in the OpenAPI document (Swagger
UI fills its forms with them; generated clients' docs show them). Each is a body the API
accepts as it is written here: tests/unit/test_openapi.py validates every one with its model
and fails for a body model that has none."""

from __future__ import annotations

from typing import Any

from contracts.billing import (
    BillingProfileInput,
    BillingRunRequest,
    CreditNoteRequest,
    DisputeRequest,
    DisputeResolution,
    LineMatch,
    PaymentOrderRequest,
    PaymentRequest,
    PaymentReversal,
    SettlementDecision,
    SettlementRequest,
    TransferPayment,
)
from contracts.bookings import BookingRequest, Condition, ReturnReport
from contracts.consultants import (
    AvailabilityChange,
    ConsultantChanges,
    ConsultantDraft,
    EngagementRequest,
    TimesheetCorrection,
    TimesheetEntry,
)
from contracts.emergencies import EmergencyDeclaration, EmergencyEnding
from contracts.fields import Reason, RequiredReason
from contracts.listings import BlackoutDraft, ListingChanges, ListingDraft
from contracts.notifications import MessageDraft, PreferencesChange
from gateway.schemas import TokenRequest

LISTING_ID = "0b7e3c1e-5b7a-4d43-9a55-3f2f1c6d2a10"
INVOICE_ID = "5d0c2f4e-8a1b-4c3d-9e6f-7a8b9c0d1e2f"
CONSULTANT_ID = "9a3f6b2c-1d4e-4f5a-8b7c-6d5e4f3a2b1c"

BODY_EXAMPLES: dict[type, dict[str, Any]] = {
    TokenRequest: {"email": "manager.42044@mutualis-demo.fr", "password": "mutualis-demo"},
    ListingDraft: {
        "title": "Chasse-neige Unimog, lame 3 m",
        "description": "Unimog U400 avec lame biaise et saleuse de 2 m³.",
        "category": "deneigement",
        "kind": "vehicle",
        "pricing_unit": "day",
        "rate_cents": 42000,
        "deposit_cents": 150000,
        "with_operator": True,
        "operator_rate_cents": 32000,
        "rules": "Rendu lavé, plein fait.",
    },
    ListingChanges: {"rate_cents": 39000, "rules": "Rendu lavé, plein fait, avant 18 h."},
    BlackoutDraft: {
        "start": "2027-01-11T00:00:00+01:00",
        "end": "2027-01-13T00:00:00+01:00",
        "reason": "Révision annuelle",
    },
    BookingRequest: {
        "listing_id": LISTING_ID,
        "start": "2027-01-18",
        "end": "2027-01-20",
        "purpose": "Déneigement des voies communales",
        "order_reference": "BC-2027-014",
    },
    Condition: {"condition": "Lame neuve, plein fait"},
    ReturnReport: {
        "condition": "Rétroviseur droit cassé",
        "damages": [
            {"description": "Rétroviseur droit", "amount_cents": 18000},
            {
                "description": "Rayure sur la lame",
                "amount_cents": 6000,
                "contest": "Rayure déjà notée au départ, selon le responsable de l'emprunteur",
            },
        ],
    },
    Reason: {"reason": "Épisode neigeux terminé"},
    RequiredReason: {"reason": "Le matériel est déjà engagé ce jour-là"},
    EmergencyDeclaration: {
        "name": "Neige sur la vallée de l'Ondaine",
        "territory": {"departments": ["42"]},
        "categories": ["deneigement"],
        "start": "2027-01-18T06:00:00+01:00",
    },
    EmergencyEnding: {"reason": "Routes dégagées"},
    ConsultantDraft: {
        "name": "Claire Besson",
        "title": "Urbaniste, cheffe de projet PLU",
        "skills": ["plu", "urbanisme", "concertation"],
        "bio": "A piloté la révision du plan local d'urbanisme de Firminy.",
        "languages": ["fr", "en"],
        "day_rate_cents": 65000,
        "max_days_per_month": 8,
    },
    ConsultantChanges: {"day_rate_cents": 68000, "max_days_per_month": 6},
    AvailabilityChange: {
        "periods": [
            {"start": "2027-02-08", "end": "2027-02-13", "kind": "unavailable", "note": "Congés"}
        ]
    },
    EngagementRequest: {
        "consultant_id": CONSULTANT_ID,
        "start": "2027-03-01",
        "end": "2027-04-01",
        "days": 4,
        "mission": "Accompagner la modification simplifiée du PLU",
    },
    TimesheetEntry: {"date": "2027-03-02", "days": 1, "note": "Réunion publique"},
    TimesheetCorrection: {"days": 0.5, "note": "Demi-journée seulement"},
    BillingProfileInput: {
        "siret": "21420044100017",
        "iban": "FR7630001007941234567890185",
        "bic": "BDFEFRPPCCT",
        "address": {
            "street": "Place Jean Jaurès",
            "postal_code": "42500",
            "city": "Le Chambon-Feugerolles",
        },
        "vat_regime": "not_subject",
    },
    BillingRunRequest: {"period": "2027-01"},
    CreditNoteRequest: {
        "reason": "Journée facturée deux fois",
        "lines": [{"line": 1, "amount_cents": 42000}],
    },
    PaymentRequest: {
        "invoice_id": INVOICE_ID,
        "amount_cents": 84000,
        "date": "2027-02-15",
        "reference": "VIR FACTURE 42044-2027-0001",
    },
    LineMatch: {"invoice_id": INVOICE_ID},
    SettlementRequest: {"period": "2027-01"},
    SettlementDecision: {"reason": "Nos factures de janvier sont déjà mandatées"},
    PaymentReversal: {"reason": "Virement d'une autre facture, saisi par erreur"},
    PaymentOrderRequest: {"number": "M-2027-0118", "date": "2027-02-10"},
    TransferPayment: {"date": "2027-02-20", "reference": "VIR COMPENSATION 2027-01"},
    DisputeRequest: {
        "line": 2,
        "reason": "La rayure était constatée au départ",
        "amount_cents": 15000,
    },
    MessageDraft: {"text": "Bonjour, où récupère-t-on le chasse-neige demain matin ?"},
    PreferencesChange: {
        "preferences": [
            {"kind": "booking_requested", "mode": "immediately"},
            {"kind": "invoice_issued", "mode": "daily", "digest_hour": 8},
        ]
    },
    DisputeResolution: {
        "outcome": "credit",
        "reason": "Rayure déjà notée à la remise",
        "amount_cents": 15000,
    },
}
