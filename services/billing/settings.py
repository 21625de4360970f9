"""Configuration of the billing process (BILLING_DATABASE_URL, BILLING_HTTP_PORT, AMQP_URI)."""

from infra.settings import service_settings_class


class Settings(service_settings_class("billing", 9104)):
    pass
