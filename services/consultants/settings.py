"""Configuration of the consultants process (CONSULTANTS_DATABASE_URL, CONSULTANTS_HTTP_PORT,
AMQP_URI)."""

from infra.settings import service_settings_class

Settings = service_settings_class("consultants", 9103)
