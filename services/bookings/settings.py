"""Configuration of the bookings process (BOOKINGS_DATABASE_URL, BOOKINGS_HTTP_PORT, AMQP_URI,
BOOKINGS_EXPIRY_INTERVAL_SECONDS)."""

from infra.settings import service_settings_class


class Settings(service_settings_class("bookings", 9102)):
    # how often the timers run: requests no longer decidable expire, overdue loans are announced
    expiry_interval_seconds: float = 30.0
