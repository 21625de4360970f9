"""An example body for every operation that takes one, shown in the OpenAPI document (Swagger
UI fills its forms with them; generated clients' docs show them). Each is a body the API
accepts as it is written here: tests/unit/test_openapi.py validates every one with its model
and fails for a body model that has none."""

from __future__ import annotations

from typing import Any

from contracts.accounting import ExportRequest, ImputationsInput
from contracts.agreements import (
    STANDARD_DISPUTES,
    STANDARD_INSURANCE,
    AgreementDraft,
    AgreementPolicy,
    AgreementView,
    DecisionDraft,
    Signature,
)
from contracts.billing import (
    BillingProfileInput,
    BillingRunRequest,
    CreditNoteRequest,
    DisputeRequest,
    DisputeResolution,
    InvoicePage,
    InvoiceView,
    LineMatch,
    PaymentOrderRequest,
    PaymentRequest,
    PaymentReversal,
    SettlementDecision,
    SettlementRequest,
    TransferPayment,
)
from contracts.bookings import (
    Answer,
    BookingCreated,
    BookingPage,
    BookingRequest,
    BookingView,
    Condition,
    NewDates,
    ReturnReport,
)
from contracts.consultants import (
    Acceptance,
    AvailabilityChange,
    ConsultantChanges,
    ConsultantDraft,
    EngagementRequest,
    TimesheetCorrection,
    TimesheetEntry,
)
from contracts.emergencies import EmergencyDeclaration, EmergencyEnding
from contracts.fields import Reason, RequiredReason
from contracts.listings import (
    BlackoutDraft,
    ListingChanges,
    ListingDraft,
    ListingPage,
    ListingView,
)
from contracts.notifications import MessageDraft, PreferencesChange
from gateway.schemas import TokenRequest

LISTING_ID = "0b7e3c1e-5b7a-4d43-9a55-3f2f1c6d2a10"
INVOICE_ID = "5d0c2f4e-8a1b-4c3d-9e6f-7a8b9c0d1e2f"
CONSULTANT_ID = "9a3f6b2c-1d4e-4f5a-8b7c-6d5e4f3a2b1c"
AGREEMENT_ID = "7e1b2c3d-4f5a-4b6c-8d7e-9f0a1b2c3d4e"
DECISION_ID = "2f3e4d5c-6b7a-4c8d-9e0f-1a2b3c4d5e6f"

LISTING_DRAFT = {
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
    "contact": {
        "name": "Jean Morel",
        "role": "responsable du parc",
        "phone": "04 77 12 34 56",
        "email": "parc@mairie-chambon.fr",
    },
    "pickup_address": "Centre technique municipal, 12 rue de la Forge, "
    "42500 Le Chambon-Feugerolles",
    "pickup_instructions": "Portail B, sonner à l'atelier (7 h 30 – 16 h).",
}

BODY_EXAMPLES: dict[type, dict[str, Any]] = {
    TokenRequest: {"email": "manager.42044@mutualis-demo.fr", "password": "mutualis-demo"},
    ListingDraft: LISTING_DRAFT,
    ListingChanges: {
        "rate_cents": 39000,
        "rules": "Rendu lavé, plein fait, avant 18 h.",
        "pickup_instructions": "Portail B ; en dehors des heures, appeler le 06 12 34 56 78.",
    },
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
    NewDates: {
        "start": "2027-01-25",
        "end": "2027-01-27",
        "reason": "La lame part en révision la semaine du 18",
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
    Answer: {"reason": "Le budget de la commune ne permet pas ces jours de plus"},
    RequiredReason: {"reason": "Le matériel est déjà engagé ce jour-là"},
    EmergencyDeclaration: {
        "name": "Neige sur la vallée de l'Ondaine",
        "territory": {"departments": ["42"]},
        "categories": ["deneigement"],
        "start": "2027-01-18T06:00:00+01:00",
    },
    EmergencyEnding: {"reason": "Routes dégagées"},
    AgreementDraft: {
        "title": "Mise à disposition de matériel de déneigement",
        "parties": ["42218", "42044"],
        "categories": ["deneigement"],
        "tariff": "listing_rates",
        "starts_on": "2026-11-15",
        "ends_on": "2027-04-15",
    },
    DecisionDraft: {
        "number": "2026-118",
        "date": "2026-11-24",
        "subject": "Approbation de la convention de mise à disposition de matériel de "
        "déneigement avec la commune du Chambon-Feugerolles",
        "agreement_ids": [AGREEMENT_ID],
        "authorises_mayor": True,
    },
    Signature: {"decision_id": DECISION_ID, "signatory": "Le maire de Saint-Étienne"},
    AgreementPolicy: {"requires_agreement": True},
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
    Acceptance: {"consent": {"given_on": "2027-02-15", "note": "accord écrit de l'agent"}},
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
    ImputationsInput: {
        "items": [
            {"category": "deneigement", "side": "titre", "chapter": "70", "account": "7083"},
            {
                "category": "salles",
                "side": "titre",
                "chapter": "75",
                "account": "752",
                "budget": "Budget annexe salles communales",
            },
        ]
    },
    ExportRequest: {"period": "2027-01"},
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

BOOKING_ID = "3c9d8e7f-6a5b-4c3d-8e2f-1a0b9c8d7e6f"
PHOTO_DIGEST = "9f2b6c1e4d8a7b3c5e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d"
LISTING = LISTING_DRAFT | {
    "currency": "EUR",
    "quantity": 1,
    "min_duration": 1,
    "max_duration": 5,
    "lead_time_days": 1,
    "cancellation_notice_days": 2,
    "late_cancellation_fee_cents": 20000,
    "early_pickup": True,
    "late_fee_per_day_cents": 42000,
    "auto_approve_in_emergencies": True,
    "contact": LISTING_DRAFT["contact"] | {"phone": "+33477123456"},  # answered in E.164
    "id": LISTING_ID,
    "owner_commune": "42044",
    "owner_commune_name": "Le Chambon-Feugerolles",
    "status": "published",
    "revision": 3,
    "created_at": "2026-11-02T09:14:05.120000Z",
    "updated_at": "2026-11-20T16:41:37.503000Z",
    "blackouts": [BODY_EXAMPLES[BlackoutDraft] | {"id": "7f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"}],
    "photos": [
        {
            "id": "5d4c3b2a-1f0e-4d9c-8b7a-695847362514",
            "url": f"/api/v1/photos/listings/{LISTING_ID}/{PHOTO_DIGEST}.jpg",
            "thumbnail_url": f"/api/v1/photos/listings/{LISTING_ID}/{PHOTO_DIGEST}-vignette.jpg",
            "content_type": "image/jpeg",
            "width": 2560,
            "height": 1707,
            "added_at": "2026-11-20T16:41:37.503000Z",
        }
    ],
    "distance_km": 6.8,
    "earliest_available": None,  # given with sort=available
}
BOOKING = {
    "id": BOOKING_ID,
    "listing_id": LISTING_ID,
    "listing_title": LISTING["title"],
    "status": "approved",
    "borrower_commune": "42218",
    "lender_commune": "42044",
    "start": "2027-01-17T23:00:00Z",
    "end": "2027-01-19T23:00:00Z",
    "quantity": 1,
    "purpose": "Déneigement des voies communales",
    "with_operator": True,
    "order_reference": "BC-2027-014",
    "quote": {
        "units": 2,
        "pricing_unit": "day",
        "unit_rate_cents": 42000,
        "quantity": 1,
        "rental_cents": 84000,
        "operator_cents": 64000,
        "amount_cents": 148000,
        "deposit_cents": 150000,
        "currency": "EUR",
        "late_fee_per_day_cents": 42000,
    },
    "series_id": None,
    "condition_out": None,
    "condition_in": None,
    "damages": [],
    "cancellation_fee_cents": 0,
    "checked_out_at": None,
    "returned_at": None,
    "overdue": False,
    "created_at": "2026-12-04T08:12:44.031000Z",
    "history": [
        {
            "status": "requested",
            "at": "2026-12-04T08:12:44.031000Z",
            "by_user": "agent.42218@mutualis-demo.fr",
            "by_commune": "42218",
            "note": "",
        },
        {
            "status": "approved",
            "at": "2026-12-04T10:03:19.870000Z",
            "by_user": "manager.42044@mutualis-demo.fr",
            "by_commune": "42044",
            "note": "",
        },
    ],
    "urgency": None,
    "requested_by": "agent.42218@mutualis-demo.fr",
    "pickup": {
        "contact": LISTING["contact"],
        "pickup_address": LISTING["pickup_address"],
        "pickup_instructions": LISTING["pickup_instructions"],
        "photos": LISTING["photos"],
    },
    "condition_photos": [
        {
            "id": "0e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a0b",
            "url": f"/api/v1/photos/bookings/{BOOKING_ID}/{PHOTO_DIGEST}.jpg",
            "thumbnail_url": f"/api/v1/photos/bookings/{BOOKING_ID}/{PHOTO_DIGEST}-vignette.jpg",
            "content_type": "image/jpeg",
            "width": 2560,
            "height": 1920,
            "added_at": "2026-12-07T07:58:02.114000Z",
            "stage": "check_out",
            "added_by_commune": "42044",
        }
    ],
    "agreement_reference": "CONV-42218-2026-001",
    "agreement_held": False,
    "proposal": None,
}

AGREEMENT = {
    "id": AGREEMENT_ID,
    "reference": "CONV-42218-2026-001",
    "title": BODY_EXAMPLES[AgreementDraft]["title"],
    "status": "in_force",
    "initiator_commune": "42218",
    "parties": [
        {
            "commune": "42218",
            "decision_number": "2026-118",
            "decision_date": "2026-11-24",
            "signatory": "Le maire de Saint-Étienne",
            "signed_on": "2026-11-27",
            "commune_name": "Saint-Étienne",
            "decision_id": DECISION_ID,
        },
        {
            "commune": "42044",
            "decision_number": "D-2026-45",
            "decision_date": "2026-11-26",
            "signatory": "Le maire du Chambon-Feugerolles",
            "signed_on": "2026-11-28",
            "commune_name": "Le Chambon-Feugerolles",
            "decision_id": "4a5b6c7d-8e9f-4a0b-9c1d-2e3f4a5b6c7d",
        },
    ],
    "categories": ["deneigement"],
    "covers_staff": False,
    "tariff": "listing_rates",
    "starts_on": "2026-11-15",
    "ends_on": "2027-04-15",
    "insurance": STANDARD_INSURANCE,
    "disputes": STANDARD_DISPUTES,
    "one_off_booking_id": None,
    "has_signed_scan": True,
    "created_at": "2026-11-10T14:02:51.300000Z",
    "ended_at": None,
}


def _party(insee: str, name: str, siret: str, street: str, postal_code: str) -> dict[str, Any]:
    return {
        "insee_code": insee,
        "name": name,
        "legal_name": f"Commune de {name}",
        "siren": siret[:9],
        "siret": siret,
        "address": {
            "street": street,
            "additional_street": None,
            "postal_code": postal_code,
            "city": name,
            "country_code": "FR",
        },
        "vat_number": None,
        "service_code": None,
        "engagement_number": None,
        "iban": None,
        "bic": None,
        "email": None,
    }


INVOICE = {
    "id": INVOICE_ID,
    "number": "42044-2027-0001",
    "period": "2027-01",
    "issue_date": "2027-02-01",
    "due_date": "2027-03-03",
    "currency": "EUR",
    "supplier": _party(
        "42044",
        "Le Chambon-Feugerolles",
        "21420044100017",
        "Place Jean Jaurès",
        "42500",
    )
    | {"iban": "FR7630001007941234567890185", "bic": "BDFEFRPPCCT"},
    "customer": _party(
        "42218", "Saint-Étienne", "21420218600019", "Place de l'Hôtel de Ville", "42000"
    ),
    "buyer_reference": None,
    "order_reference": "BC-2027-014",
    "agreement_reference": "CONV-2027-003",
    "lines": [
        {
            "line": 1,
            "charge_id": "c4b3a291-8f7e-4d6c-9b5a-49382716a5b4",
            "kind": "rental",
            "description": "Location « Chasse-neige Unimog, lame 3 m », "
            "du 18/01/2027 au 19/01/2027",
            "quantity": "2",
            "unit": "DAY",
            "unit_price_cents": 42000,
            "amount_cents": 84000,
            "vat_category": "O",
            "vat_rate": None,
            "source_reference": f"booking:{BOOKING_ID}:rental",
            "order_reference": "BC-2027-014",
            "credited_cents": 0,
            "service_start": "2027-01-18",
            "service_end": "2027-01-19",
        },
        {
            "line": 2,
            "charge_id": "d5c4b3a2-9f8e-4d7c-8b6a-5a4938271605",
            "kind": "operator",
            "description": "Conducteur ou opérateur pour « Chasse-neige Unimog, lame 3 m », "
            "du 18/01/2027 au 19/01/2027",
            "quantity": "2",
            "unit": "DAY",
            "unit_price_cents": 32000,
            "amount_cents": 64000,
            "vat_category": "O",
            "vat_rate": None,
            "source_reference": f"booking:{BOOKING_ID}:operator",
            "order_reference": "BC-2027-014",
            "credited_cents": 0,
            "service_start": "2027-01-18",
            "service_end": "2027-01-19",
        },
    ],
    "totals": {
        "net_cents": 148000,
        "vat_cents": 0,
        "total_cents": 148000,
        "credited_cents": 0,
        "paid_cents": 100000,
        "settled_cents": 0,
    },
    "vat_breakdown": [
        {
            "category": "O",
            "rate": None,
            "taxable_cents": 148000,
            "tax_cents": 0,
            "exemption_reason": "TVA non applicable, article 256 B du CGI",
            "exemption_reason_code": "VATEX-EU-O",
        }
    ],
    "status": "partially_paid",
    "balance_cents": 48000,
    "overpaid_cents": 0,
    "payer_credit_cents": 0,
    "credit_notes": [],
    "payments": [
        {
            "id": "e6d5c4b3-a29f-4e8d-8c7b-6a5b4c3d2e1f",
            "invoice_id": INVOICE_ID,
            "invoice_number": "42044-2027-0001",
            "amount_cents": 100000,
            "date": "2027-02-15",
            "reference": "VIR FACTURE 42044-2027-0001",
            "source": "manual",
            "statement_line_id": None,
            "recorded_at": "2027-02-16T08:30:12.400000Z",
            "recorded_by": "finance.42044@mutualis-demo.fr",
            "overpayment": False,
            "reversed_at": None,
            "reversed_by": None,
            "reversal_reason": None,
        }
    ],
    "payment_order": None,
    "disputes": [],
    "disputed_cents": 0,
}

# what the main operations answer, exactly as they serialise (tests/unit/test_openapi.py)
RESPONSE_EXAMPLES: dict[type, dict[str, Any]] = {
    ListingView: LISTING,
    ListingPage: {
        "items": [LISTING],
        "next_cursor": "eyJkIjo2LjgsImlkIjoiMGI3ZTNjMWUifQ",
        "count": 14,
        "count_exact": True,
        "facets": {
            "category": {"deneigement": 9, "voirie": 5},
            "kind": {"vehicle": 11, "equipment": 3},
            "owner_commune": {"42044": 8, "42095": 6},
            "with_operator": 7,
        },
    },
    BookingView: BOOKING,
    BookingCreated: BOOKING
    | {"status": "requested", "history": BOOKING["history"][:1], "created": [], "conflicts": []},
    BookingPage: {"items": [BOOKING], "next_cursor": None},
    AgreementView: AGREEMENT,
    InvoiceView: INVOICE,
    InvoicePage: {
        "items": [
            {
                "id": INVOICE_ID,
                "number": "42044-2027-0001",
                "period": "2027-01",
                "issue_date": "2027-02-01",
                "due_date": "2027-03-03",
                "supplier_commune": "42044",
                "customer_commune": "42218",
                "total_cents": 148000,
                "balance_cents": 48000,
                "status": "partially_paid",
                "lines": 2,
            }
        ],
        "next_cursor": None,
    },
}
