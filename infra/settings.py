"""Process configuration from the environment: one pydantic-settings class per process."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from infra import codec

PROJECT_ROOT = Path(__file__).resolve().parents[1]
VAR_DIR = PROJECT_ROOT / "var"


def sqlite_default(name: str) -> str:
    """The embedded default database: a SQLite file under var/."""
    return f"sqlite:///{VAR_DIR / (name + '.sqlite3')}"


class ProcessSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    amqp_uri: str = Field(default="amqp://guest:guest@127.0.0.1:5672/", validation_alias="AMQP_URI")
    log_level: str = Field(default="INFO", validation_alias="LOG_LEVEL")
    log_format: str = Field(default="json", validation_alias="LOG_FORMAT", pattern="^(json|text)$")


class ServiceSettings(ProcessSettings):
    """Settings of one nameko service; subclasses set the env prefix and defaults."""

    service_name: str
    database_url: str
    http_host: str = "127.0.0.1"
    http_port: int
    max_workers: int = 10
    # the relay publishes on PostgreSQL's notice of a commit (what commits meanwhile makes
    # the next batch), or after idle seconds; a poll period above 0 spaces its batches
    # (SQLite, which notifies nothing: read every max(poll, 0.05) seconds)
    relay_poll_seconds: float = 0.0
    relay_idle_seconds: float = 1.0
    # PostgreSQL: batches published and awaiting their confirms at once (1: one at a time)
    relay_in_flight: int = 4

    def nameko_config(self) -> dict:
        return {
            "AMQP_URI": self.amqp_uri,
            "WEB_SERVER_ADDRESS": f"{self.http_host}:{self.http_port}",
            "max_workers": self.max_workers,
            "parent_calls_tracked": 10,
            "DATABASE_URL": self.database_url,
            "SERVICE_SETTINGS": self,
            # JSON by orjson, under kombu's application/json (infra.codec)
            "SERIALIZERS": codec.SERIALIZERS,
            "serializer": codec.SERIALIZER,
        }


def service_settings_class(service: str, port: int) -> type[ServiceSettings]:
    """Settings of a service read from `<SERVICE>_DATABASE_URL`, `<SERVICE>_HTTP_PORT`, …"""
    prefix = service.upper() + "_"

    class _Settings(ServiceSettings):
        model_config = SettingsConfigDict(env_prefix=prefix, extra="ignore")
        service_name: str = service
        database_url: str = sqlite_default(service)
        http_port: int = port

    _Settings.__name__ = f"{service.title()}Settings"
    return _Settings
