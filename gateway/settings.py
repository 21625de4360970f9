"""Configuration of the gateway process (GATEWAY_* and AMQP_URI)."""

import ipaddress
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from infra.settings import VAR_DIR, ServiceSettings, sqlite_default
from infra.web import METRICS_SERVER_ADDRESS

# published in the source: signs only in demo mode, which serves loopback alone
DEMO_SECRET = "mutualis-demo-secret-change-me-in-production-0123456789"
MIN_SECRET_BYTES = 32
# compose and Kubernetes may mount the keys as files (gateway_token_secret, …) here
SECRETS_DIR = Path("/run/secrets")


class UnsafeDeployment(Exception):
    """The gateway would start open: a known or short key outside demo mode, or demo mode
    reachable from the network."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        extra="ignore",
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
    )

    service_name: str = "gateway"
    database_url: str = sqlite_default("gateway")
    http_port: int = 8000
    # the Prometheus metrics, on their own port (same host), which no ingress routes: the
    # public port (http_port) answers /metrics 404; it keeps /health/live and /health/ready
    metrics_port: int = 9100
    max_workers: int = 32
    public_url: str = "http://127.0.0.1:8000"
    # demo mode (make run, the tests) may sign with DEMO_SECRET, and serves loopback only
    demo_mode: bool = False
    # HS256 key that signs new tokens: ≥ 32 random bytes, from a secret, outside demo mode
    token_secret: str = Field(default=DEMO_SECRET, min_length=1)
    # during a rotation, the key that signed before: its tokens stay valid until they expire
    token_previous_secret: str = ""
    token_ttl_seconds: int = Field(default=3600, ge=60, le=86400)
    token_audience: str = "mutualis-api"
    token_issuer: str = "mutualis-gateway"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    rpc_timeout_seconds: float = Field(default=10.0, gt=0)
    # web pages: how long a signed-in browser stays signed in (a working day)
    session_ttl_seconds: int = Field(default=10 * 3600, ge=300, le=7 * 86400)
    # a token's user (exists, enabled, same roles and commune) is read again after this long
    user_check_seconds: float = Field(default=60.0, ge=0, le=60)
    # failed logins: free ones per account and per client address, then an exponential
    # delay from login_backoff_seconds up to login_backoff_max_seconds; a counter without
    # a failure for login_failure_memory_seconds is forgotten
    login_free_failures: int = Field(default=5, ge=1)
    login_backoff_seconds: float = Field(default=1.0, gt=0)
    login_backoff_max_seconds: float = Field(default=900.0, gt=0)
    login_failure_memory_seconds: float = Field(default=3600.0, gt=0)
    # proxies in front of the gateway (comma-separated networks, e.g. the ingress's): their
    # X-Forwarded-For says the client's address; anyone else's is ignored
    trusted_proxies: str = ""
    # an Idempotency-Key whose first request never finished (the gateway died) is free again
    idempotency_in_progress_seconds: float = Field(default=300.0, gt=0)
    # demo mode only: e-mails (comma-separated) that sign in with the password alone though
    # their role wants a second factor (the demo seed's operator, whose password is public)
    second_factor_exempt: str = "operator@mutualis-demo.fr"
    # the pages: how long after the right password the second factor's code may come
    second_factor_wait_seconds: int = Field(default=600, ge=60, le=3600)
    # demo mode only: where the local mail catcher writes the mails the page /courriels lists
    demo_mail_dir: Path = VAR_DIR / "mail"

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        """A mistyped network stops the gateway at start-up, not every login later."""
        for network in (n.strip() for n in value.split(",")):
            if network:
                ipaddress.ip_network(network)  # ValueError: refused with the setting's name
        return value

    @model_validator(mode="after")
    def _two_ports(self):
        if self.metrics_port == self.http_port:
            raise ValueError("GATEWAY_METRICS_PORT must differ from GATEWAY_HTTP_PORT")
        return self

    def exempt_from_second_factor(self) -> frozenset[str]:
        """The e-mails let in without the second factor their role wants: none outside demo
        mode, whatever GATEWAY_SECOND_FACTOR_EXEMPT says."""
        if not self.demo_mode:
            return frozenset()
        return frozenset(e.strip().lower() for e in self.second_factor_exempt.split(",") if e)

    def check_deployable(self) -> None:
        """Refuses to serve with a key anyone can read or guess, or a demo reachable from
        the network."""
        if self.demo_mode:
            if not is_loopback(self.http_host):
                raise UnsafeDeployment(
                    f"demo mode serves loopback only, not {self.http_host}: set "
                    "GATEWAY_TOKEN_SECRET and GATEWAY_DEMO_MODE=false to expose the gateway"
                )
            return
        for name, secret in (
            ("GATEWAY_TOKEN_SECRET", self.token_secret),
            ("GATEWAY_TOKEN_PREVIOUS_SECRET", self.token_previous_secret),
        ):
            if secret == DEMO_SECRET or "change-me" in secret.lower():
                raise UnsafeDeployment(
                    f"{name} is the demo key or a placeholder: give it {MIN_SECRET_BYTES}"
                    " random bytes from a secret (or set GATEWAY_DEMO_MODE=true on loopback)"
                )
            if secret and len(secret.encode()) < MIN_SECRET_BYTES:
                raise UnsafeDeployment(f"{name} is shorter than {MIN_SECRET_BYTES} bytes")

    def nameko_config(self) -> dict:
        self.check_deployable()
        config = super().nameko_config()
        config["GATEWAY"] = self
        config[METRICS_SERVER_ADDRESS] = f"{self.http_host}:{self.metrics_port}"
        return config
