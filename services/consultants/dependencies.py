"""The matching index of a consultants process, kept up to date from its database."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from nameko.extensions import DependencyProvider
from sqlalchemy.orm import Session

from contracts.consultants import ConsultantStatus, ConsultantView
from infra.database import service_engine
from services.consultants import repository
from services.consultants.domain import ConsultantIndex, MatchResult, Need, match_consultants

log = logging.getLogger(__name__)


class Catalogue:
    """The published consultants as a ConsultantIndex, in memory, with what a match answers
    of each. Before each match the count of changes (catalogue_changes: a few rows,
    whatever the number of consultants) tells whether anything changed (any process may
    have changed it); if so, only the consultants whose revision moved are reloaded."""

    def __init__(self) -> None:
        self.index = ConsultantIndex()
        self._views: dict[str, ConsultantView] = {}
        self._revisions: dict[str, int] = {}
        self._version: int | None = None
        # one refresh at a time; green under eventlet, a real lock elsewhere (the bench)
        self._lock = threading.Lock()

    def current(self, session: Session) -> ConsultantIndex:
        version = repository.catalogue_version(session)
        if version != self._version:
            with self._lock:
                if version != self._version:
                    self._refresh(session)
                    self._version = version
        return self.index

    def match(self, session: Session, need: Need) -> tuple[MatchResult, list[ConsultantView]]:
        """The need's ranking, on the index as of now, and the ranked consultants' views."""
        result = match_consultants(self.current(session), need)
        return result, [self._views[r.profile.consultant_id] for r in result.items]

    def _refresh(self, session: Session) -> None:
        started = time.perf_counter()
        known = repository.revisions(session)
        changed = [
            cid
            for cid, (revision, status) in known.items()
            if status == ConsultantStatus.PUBLISHED.value and self._revisions.get(cid) != revision
        ]
        for cid, (_, status) in known.items():
            if status != ConsultantStatus.PUBLISHED.value and cid in self.index:
                self.index.drop(cid)
                self._views.pop(cid, None)
                self._revisions.pop(cid, None)
        for profile, view, revision in repository.profiles(session, changed):
            self.index.put(profile)
            self._views[profile.consultant_id] = view
            self._revisions[profile.consultant_id] = revision
        if changed:
            log.info(
                "matching index: %d consultant(s) reloaded in %.3f s, %d in all",
                len(changed),
                time.perf_counter() - started,
                len(self.index),
            )


class MatchingIndex(DependencyProvider):
    """`self.catalogue` in the service: one Catalogue per process, shared by its workers,
    loaded as the service starts so that the first match does not wait for it."""

    def setup(self) -> None:
        self.catalogue = Catalogue()

    def start(self) -> None:
        self.container.spawn_managed_thread(self._preload, identifier="matching_index.preload")

    def _preload(self) -> None:
        try:
            engine = service_engine(self.container.config)
            with Session(engine) as session, session.begin():
                self.catalogue.current(session)
        except Exception:  # the first match will load it; never stop the service for this
            log.warning("matching index not preloaded", exc_info=True)

    def get_dependency(self, worker_ctx: Any) -> Catalogue:
        return self.catalogue
