"""Configuration of the bookings process (BOOKINGS_DATABASE_URL, BOOKINGS_HTTP_PORT, AMQP_URI,
BOOKINGS_EXPIRY_INTERVAL_SECONDS, BOOKINGS_OVERDUE_INTERVAL_SECONDS)."""

from infra.settings import service_settings_class


class Settings(service_settings_class("bookings", 9102)):
    # how often requests no longer decidable (domain.decide_by) are expired
    expiry_interval_seconds: float = 30.0
    # how often loans not returned by their end are looked for (booking.overdue)
    overdue_interval_seconds: float = 60.0
