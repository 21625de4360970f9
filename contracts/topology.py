"""Who listens to what: every event subscription, declared in one place.

The relay declares all of these queues and bindings before it publishes anything, so an
event sent while its consumer is down waits in the consumer's durable queue.
"""

from dataclasses import dataclass

from contracts.agreements import AGREEMENT_EVENTS
from contracts.billing import (
    CreditNoteIssued,
    InvoiceDisputed,
    InvoiceDisputeResolved,
    InvoiceIssued,
    InvoicePaid,
    PaymentOrdered,
    PaymentRecorded,
    PaymentReversed,
    SettlementCompleted,
    SettlementDeclined,
    SettlementProposed,
    SettlementVoided,
    TransferPaid,
)
from contracts.bookings import EVENT_OF_STATUS as BOOKING_EVENT_OF_STATUS
from contracts.bookings import (
    BookingCancelled,
    BookingDatesDeclined,
    BookingDatesProposed,
    BookingOverdue,
    BookingRescheduled,
    BookingReturned,
)
from contracts.consultants import EVENT_OF_STATUS as ENGAGEMENT_EVENT_OF_STATUS
from contracts.consultants import EngagementTimesheetApproved, EngagementTimesheetRecorded
from contracts.emergencies import EMERGENCY_EVENTS, EmergencyDeclared
from contracts.listings import ListingPublished, ListingUpdated, ListingWithdrawn
from contracts.users import USER_EVENTS

DEAD_LETTER_EXCHANGE = "mutualis.dead-letter"


def event_exchange(service: str) -> str:
    """nameko's naming: each service publishes to its own `<service>.events` topic exchange."""
    return f"{service}.events"


@dataclass(frozen=True)
class Subscription:
    consumer: str  # the consuming service
    name: str  # what the consumer does with these events
    source: str  # the producing service
    event_types: tuple[str, ...]

    @property
    def queue(self) -> str:
        return f"evt-{self.source}--{self.consumer}.{self.name}"

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead-letter"


LISTINGS_TO_BOOKINGS = Subscription(
    consumer="bookings",
    name="listing_copies",
    source="listings",
    event_types=(ListingPublished.TYPE, ListingUpdated.TYPE, ListingWithdrawn.TYPE),
)

# every event of a booking's life: one per status it can enter, and its dates moved
BOOKING_EVENTS = (
    *(event.TYPE for event in BOOKING_EVENT_OF_STATUS.values()),
    BookingRescheduled.TYPE,
)

BOOKINGS_TO_LISTINGS = Subscription(
    consumer="listings",
    name="busy_periods",
    source="bookings",
    event_types=BOOKING_EVENTS,
)

BOOKINGS_TO_BILLING = Subscription(
    consumer="billing",
    name="charges",
    source="bookings",
    event_types=(BookingReturned.TYPE, BookingCancelled.TYPE),
)

# the accountant's export imputes a loan by its listing's category
LISTINGS_TO_BILLING = Subscription(
    consumer="billing",
    name="listing_categories",
    source="listings",
    event_types=(ListingPublished.TYPE, ListingUpdated.TYPE),
)

CONSULTANTS_TO_BILLING = Subscription(
    consumer="billing",
    name="charges",
    source="consultants",
    event_types=(EngagementTimesheetApproved.TYPE,),
)

# search puts what is free now first for a searcher in an episode's territory
EMERGENCIES_TO_LISTINGS = Subscription(
    consumer="listings",
    name="emergencies",
    source="bookings",
    event_types=EMERGENCY_EVENTS,
)

# what billing announces about money between communes, for whoever must tell a finance team
# (a netting to accept, a line contested, a payment reversed): a consumer subscribes to these
BILLING_MONEY_EVENTS = tuple(
    event.TYPE
    for event in (
        InvoiceIssued,
        InvoicePaid,
        PaymentRecorded,
        PaymentReversed,
        PaymentOrdered,
        CreditNoteIssued,
        InvoiceDisputed,
        InvoiceDisputeResolved,
        SettlementProposed,
        SettlementDeclined,
        SettlementVoided,
        SettlementCompleted,
        TransferPaid,
    )
)

# the notifications service learns people from the gateway, and tells them what needs them
GATEWAY_TO_NOTIFICATIONS = Subscription(
    consumer="notifications",
    name="people",
    source="gateway",
    event_types=USER_EVENTS,
)

BOOKINGS_TO_NOTIFICATIONS = Subscription(
    consumer="notifications",
    name="notices",
    source="bookings",
    event_types=(
        *BOOKING_EVENTS,
        BookingOverdue.TYPE,
        BookingDatesProposed.TYPE,
        BookingDatesDeclined.TYPE,
        EmergencyDeclared.TYPE,
    ),
)

CONSULTANTS_TO_NOTIFICATIONS = Subscription(
    consumer="notifications",
    name="notices",
    source="consultants",
    # every event of an engagement's life: its two communes may write to each other; and
    # days worked recorded, for the borrower to approve
    event_types=(
        *(event.TYPE for event in ENGAGEMENT_EVENT_OF_STATUS.values()),
        EngagementTimesheetRecorded.TYPE,
    ),
)

# consultants keeps the agreements between communes (owned by bookings) that may cover its
# staff engagements, and prints their reference on approved days (BT-12)
BOOKINGS_TO_CONSULTANTS = Subscription(
    consumer="consultants",
    name="agreements",
    source="bookings",
    event_types=AGREEMENT_EVENTS,
)

# the money that needs a person: an invoice to pay, a netting to decide and its outcome, a
# line contested and its answer, a payment reversed
BILLING_TO_NOTIFICATIONS = Subscription(
    consumer="notifications",
    name="notices",
    source="billing",
    event_types=tuple(
        event.TYPE
        for event in (
            InvoiceIssued,
            SettlementProposed,
            SettlementDeclined,
            SettlementVoided,
            SettlementCompleted,
            InvoiceDisputed,
            InvoiceDisputeResolved,
            PaymentReversed,
        )
    ),
)

SUBSCRIPTIONS: tuple[Subscription, ...] = (
    LISTINGS_TO_BOOKINGS,
    BOOKINGS_TO_LISTINGS,
    EMERGENCIES_TO_LISTINGS,
    BOOKINGS_TO_BILLING,
    LISTINGS_TO_BILLING,
    CONSULTANTS_TO_BILLING,
    GATEWAY_TO_NOTIFICATIONS,
    BOOKINGS_TO_NOTIFICATIONS,
    CONSULTANTS_TO_NOTIFICATIONS,
    BILLING_TO_NOTIFICATIONS,
    BOOKINGS_TO_CONSULTANTS,
)
