"""Per-process pieces of the bookings service: the episodes in force as this process last
read them, and the urgent-request gauges pointed at its database."""

from __future__ import annotations

import time
from datetime import datetime
from functools import partial

from nameko.extensions import DependencyProvider
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from contracts.emergencies import EmergencyView
from infra.database import service_engine
from services.bookings import emergency, emergency_repository
from services.bookings.emergency_metrics import track_urgent_requests


class EpisodesInForce:
    """The episodes not ended, read at most once per `ttl` seconds per process: every
    booking request asks, and episodes change a few times a winter. A declaration or an
    end in this process is seen at once; one in another replica within `ttl`."""

    def __init__(self, ttl: float = 2.0):
        self.ttl = ttl
        self._read_at = -float("inf")
        self._episodes: list[EmergencyView] = []

    def at(self, session: Session, now: datetime) -> list[EmergencyView]:
        if time.monotonic() - self._read_at > self.ttl:
            rows = emergency_repository.emergencies(session, at=None, include_ended=False)
            self._episodes = [emergency_repository.emergency_view(r) for r in rows]
            self._read_at = time.monotonic()
        return [e for e in self._episodes if emergency.in_force(e, now)]

    def forget(self) -> None:
        self._read_at = -float("inf")


EPISODES = EpisodesInForce()


def _waiting(engine: Engine):
    with Session(engine) as session:
        return emergency_repository.waiting(session)


class UrgentRequestsGauges(DependencyProvider):
    """Has the urgent-request gauges read this service's database at scrape time."""

    def setup(self) -> None:
        track_urgent_requests(partial(_waiting, service_engine(self.container.config)))
