"""Configuration of the notifications process (NOTIFICATIONS_DATABASE_URL,
NOTIFICATIONS_HTTP_PORT, AMQP_URI, and the mail server: NOTIFICATIONS_SMTP_HOST, …)."""

from infra.settings import service_settings_class


class Settings(service_settings_class("notifications", 9105)):
    # the mail server (a local catcher by default: `make run` starts one on this port)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_starttls: bool = False  # STARTTLS before authenticating (port 587 servers)
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "Mutualis <ne-pas-repondre@mutualis.fr>"
    # the web pages the mails link to (the gateway's public address)
    public_url: str = "http://localhost:8000"
    # how often mails due are sent; a mail that failed waits longer each time (backoff)
    delivery_interval_seconds: float = 2.0
    # a mail the server could not take waits base, 2 × base, 4 × base, … up to cap seconds
    retry_base_seconds: float = 5.0
    retry_cap_seconds: float = 900.0
    # how often the loans starting tomorrow (Paris) are looked for, to remind both sides
    reminder_interval_seconds: float = 600.0
