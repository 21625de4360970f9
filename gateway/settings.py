"""Configuration of the gateway process (GATEWAY_* and AMQP_URI)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from infra.settings import ServiceSettings, sqlite_default

DEMO_SECRET = "mutualis-demo-secret-change-me-in-production-0123456789"


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore")

    service_name: str = "gateway"
    database_url: str = sqlite_default("gateway")
    http_port: int = 8000
    max_workers: int = 32
    public_url: str = "http://127.0.0.1:8000"
    # HS256 key: at least 32 bytes; the default is for local use only
    token_secret: str = Field(default=DEMO_SECRET, min_length=32)
    token_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    token_audience: str = "mutualis-api"
    token_issuer: str = "mutualis-gateway"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    rpc_timeout_seconds: float = Field(default=10.0, gt=0)
    # web pages: how long a signed-in browser stays signed in (a working day)
    session_ttl_seconds: int = Field(default=10 * 3600, ge=300, le=7 * 86400)

    def nameko_config(self) -> dict:
        config = super().nameko_config()
        config["GATEWAY"] = self
        return config
