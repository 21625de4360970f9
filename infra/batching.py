"""Group commit: what concurrent workers hand in is decided together, in one transaction.

A busy service then pays one BEGIN, one round trip per kind of read, one write and one
COMMIT (one WAL flush) for many requests instead of for each; an idle one waits for
nothing, since a batch is whatever was handed in while the previous batch ran (the first
request of a quiet moment is a batch of one, decided at once).

The decision function takes the batch and returns one outcome per item, in order: a
result, or a ServiceError (a 4xx answer for that item only, which wrote nothing). If the
transaction itself fails, each item of the batch is decided again alone, so that one bad
item costs the others a retry, never their answer; unless the failure says the database
is unreachable, which every item would meet again: then each gets that error at once.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from eventlet.event import Event
from nameko.extensions import DependencyProvider

from contracts.errors import ServiceError
from infra.consumer import is_transient
from infra.database import Database, DatabaseAccess
from infra.exactly_once import Request, request_of
from infra.metrics import GROUP_COMMIT_SIZE

Decide = Callable[[DatabaseAccess, Sequence[Any]], list[Any]]


class GroupCommit(DependencyProvider):
    """`self.<name>(item)` in a worker: the item's outcome, decided with the items other
    workers handed in meanwhile; a ServiceError outcome is raised in that worker."""

    def __init__(self, decide: Decide, max_batch: int = 32):
        self.decide = decide
        self.max_batch = max_batch

    def setup(self) -> None:
        self.work = f"{self.container.service_name}.{self.attr_name}"
        self._waiting: deque[tuple[Any, Event, Request | None]] = deque()
        self._deciding = False
        # resolved once, and exported from 0
        self._batch_size = GROUP_COMMIT_SIZE.labels(self.container.service_name, self.work)

    def start(self) -> None:
        # after every setup (they run concurrently): the service's engine exists by now
        database = next(d for d in self.container.dependencies if isinstance(d, Database))
        self.db = DatabaseAccess(
            database.engine, self.container.service_name, correlation_id=None, consumer=self.work
        )

    def get_dependency(self, worker_ctx: Any) -> Callable[[Any], Any]:
        request = request_of(worker_ctx)
        return partial(self.submit, request=request) if request else self.submit

    def submit(self, item: Any, request: Request | None = None) -> Any:
        """The item's outcome; `request`, the RPC request it answers, is recorded with it
        (infra.exactly_once)."""
        answered = Event()
        self._waiting.append((item, answered, request))
        if not self._deciding:
            self._deciding = True  # until nothing waits
            # runs once this worker waits below; by then others may have handed theirs in
            self.container.spawn_managed_thread(self._decide_waiting, identifier=self.work)
        return answered.wait()

    def _decide_waiting(self) -> None:
        try:
            while self._waiting:
                count = min(self.max_batch, len(self._waiting))
                self._decide_batch([self._waiting.popleft() for _ in range(count)])
        finally:
            self._deciding = False

    def _decide_batch(self, batch: list[tuple[Any, Event, Request | None]]) -> None:
        self.db.requests = [request for _, _, request in batch if request is not None]
        try:
            outcomes = self.decide(self.db, [item for item, _, _ in batch])
            if len(outcomes) != len(batch):
                raise RuntimeError(f"{self.work}: {len(outcomes)} outcomes for {len(batch)}")
        except Exception as exc:
            if len(batch) == 1 or is_transient(exc):  # the database is away: for every item
                for _, answered, _ in batch:
                    answered.send_exception(*sys.exc_info())
                return
            for one in batch:  # which item broke it is not known: each decided alone
                self._decide_batch([one])
            return
        self._batch_size.observe(len(batch))
        for (_, answered, _), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, ServiceError):
                answered.send_exception(outcome)
            else:
                answered.send(outcome)
