"""Configuration of the bookings process (BOOKINGS_DATABASE_URL, BOOKINGS_HTTP_PORT, AMQP_URI)."""

from infra.settings import service_settings_class

Settings = service_settings_class("bookings", 9102)
