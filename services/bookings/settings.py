"""Configuration of the bookings process (BOOKINGS_DATABASE_URL, BOOKINGS_HTTP_PORT, AMQP_URI,
BOOKINGS_EXPIRY_INTERVAL_SECONDS,
BOOKINGS_ALLOCATION_WINDOW_SECONDS, BOOKINGS_ALLOCATION_INTERVAL_SECONDS)."""

from infra.settings import service_settings_class


class Settings(service_settings_class("bookings", 9102)):
    # how often the timers run: requests no longer decidable expire, overdue loans are announced
    expiry_interval_seconds: float = 30.0
    # urgent requests for one listing made within this window of the first are allocated
    # together once it closes (BOOKINGS_ALLOCATION_WINDOW_SECONDS)
    allocation_window_seconds: float = 600.0
    # how often the closed windows are looked for
    allocation_interval_seconds: float = 15.0
