"""Per-process pieces of the listings service: the emergency episodes not ended, as this
process last read them."""

from __future__ import annotations

import time
from datetime import datetime

from sqlalchemy.orm import Session

from contracts.emergencies import EmergencySnapshot
from services.listings import repository


class EpisodesInForce:
    """The episodes not ended, read at most once per `ttl` seconds per process: every search
    asks whether one covers the searcher (a query per search cost ~1 ms of CPU), and episodes
    change a few times a winter. One learned by this process is seen at once; one learned by
    another replica within `ttl`."""

    def __init__(self, ttl: float = 2.0):
        self.ttl = ttl
        self._read_at = -float("inf")
        self._episodes: list[EmergencySnapshot] = []

    def at(self, session: Session, now: datetime) -> list[EmergencySnapshot]:
        if time.monotonic() - self._read_at > self.ttl:
            self._episodes = repository.emergencies_not_ended(session)
            self._read_at = time.monotonic()
        return [e for e in self._episodes if e.start <= now and (e.end is None or e.end > now)]

    def forget(self) -> None:
        self._read_at = -float("inf")


EPISODES = EpisodesInForce()
