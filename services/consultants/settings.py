"""Configuration of the consultants process (CONSULTANTS_DATABASE_URL, CONSULTANTS_HTTP_PORT,
AMQP_URI, CONSULTANTS_ENGAGEMENT_EXPIRY_DAYS, CONSULTANTS_EXPIRY_INTERVAL_SECONDS)."""

from pydantic import Field

from infra.settings import service_settings_class


class Settings(service_settings_class("consultants", 9103)):
    # an engagement request the consultant's commune leaves undecided this long expires
    engagement_expiry_days: int = Field(default=15, ge=1, le=365)
    # how often the requests are looked at for expiry
    expiry_interval_seconds: float = 60.0
