"""Who listens to what: every event subscription, declared in one place.

The relay declares all of these queues and bindings before it publishes anything, so an
event sent while its consumer is down waits in the consumer's durable queue.
"""

from dataclasses import dataclass

# every event type a subscription names is defined (and registered) in these modules
import contracts.billing
import contracts.bookings
import contracts.consultants
import contracts.listings  # noqa: F401

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
    event_types=("listing.published", "listing.updated", "listing.withdrawn"),
)

BOOKING_EVENTS = (
    "booking.requested",
    "booking.approved",
    "booking.rejected",
    "booking.cancelled",
    "booking.expired",
    "booking.checked_out",
    "booking.returned",
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
    event_types=("booking.returned", "booking.cancelled"),
)

CONSULTANTS_TO_BILLING = Subscription(
    consumer="billing",
    name="charges",
    source="consultants",
    event_types=("engagement.timesheet_approved",),
)

SUBSCRIPTIONS: tuple[Subscription, ...] = (
    LISTINGS_TO_BOOKINGS,
    BOOKINGS_TO_LISTINGS,
    BOOKINGS_TO_BILLING,
    CONSULTANTS_TO_BILLING,
)
