"""A service as a real process (`mutualis serve <service>`), to be killed like a real one,
and the events billing charges: shared by billing's integration tests and bench.consume."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import requests

from contracts.bookings import BookingReturned, BookingSnapshot, Damage, Quote
from infra.settings import PROJECT_ROOT
from tests.support.stack import MUTUALIS, free_port
from tests.support.waiting import wait_until


class ServiceProcess:
    """`mutualis serve <service>` on the database `url` and the broker `amqp_uri`."""

    def __init__(
        self,
        service: str,
        url: str,
        amqp_uri: str,
        log_path,
        log_format: str = "text",
        checkout=PROJECT_ROOT,
        settings: dict[str, str] | None = None,
    ):
        """`checkout`: the code it runs (bench.consume compares two); `settings`: more of
        its environment (a mail server's address)."""
        self.service = service
        self.port = free_port()
        prefix = service.upper()
        env = dict(
            os.environ,
            **{f"{prefix}_DATABASE_URL": url, f"{prefix}_HTTP_PORT": str(self.port)},
            AMQP_URI=amqp_uri,
            LOG_FORMAT=log_format,
            PYTHONPATH=str(checkout),
            **(settings or {}),
        )
        self.log = open(log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [*MUTUALIS, "serve", service],
            env=env,
            cwd=checkout,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> ServiceProcess:
        def ready():
            assert self.proc.poll() is None, f"{self.service} exited: see its log"
            try:
                url = f"http://127.0.0.1:{self.port}/health/ready"
                return requests.get(url, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until(ready, timeout=30, interval=0.1)
        return self

    def duplicates_skipped(self) -> float:
        text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=5).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("mutualis_events_duplicates_skipped_total{")
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        self.proc.send_signal(sig)
        self.proc.wait(timeout=20)
        self.log.close()


class BillingProcess(ServiceProcess):
    """`mutualis serve billing` as a real process."""

    def __init__(
        self, url: str, amqp_uri: str, log_path, log_format: str = "text", checkout=PROJECT_ROOT
    ):
        super().__init__("billing", url, amqp_uri, log_path, log_format, checkout)


def returned(booking_id: str | None = None) -> BookingReturned:
    """A returned booking: two days of rental and one damage, so two charges."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    snapshot = BookingSnapshot(
        booking_id=booking_id or str(uuid.uuid4()),
        listing_id="l-1",
        listing_title="Chasse-neige",
        status="returned",
        lender_commune="42044",
        borrower_commune="42218",
        start=start,
        end=start + timedelta(days=2),
        quantity=1,
        with_operator=False,
        quote=Quote(
            units=2,
            pricing_unit="day",
            unit_rate_cents=42000,
            quantity=1,
            rental_cents=84000,
            operator_cents=0,
            amount_cents=84000,
            deposit_cents=0,
        ),
        damages=[Damage(description="Rétroviseur", amount_cents=15000)],
    )
    return BookingReturned.new(snapshot, producer="bookings", correlation_id="test")
