"""Configuration of the listings process (LISTINGS_DATABASE_URL, LISTINGS_HTTP_PORT, AMQP_URI)."""

from infra.settings import service_settings_class

Settings = service_settings_class("listings", 9101)
