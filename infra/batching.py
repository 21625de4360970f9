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

A GroupCommit whose outcomes are its RPC methods' replies (`outcome_is_reply`: the method
returns the outcome as it is, or raises it) stores each recorded request's encoded reply in
the batch's transaction, just before its COMMIT: the effect and its reply commit together,
so a process killed right after the commit leaves no request applied without its reply
(infra.exactly_once). The decision function knows nothing of it: its transaction's commit
is held until it has returned (`DatabaseAccess.replies_at_commit`).

`Batches` is the batching alone, for any work that costs less done together (the replies
of requests applied once are stored so, infra.rpc).
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import partial
from typing import Any

import kombu.serialization
from eventlet.event import Event
from nameko.exceptions import serialize
from nameko.extensions import DependencyProvider

from contracts.errors import ServiceError
from infra.consumer import is_transient
from infra.database import Database, DatabaseAccess, HeldCommit
from infra.exactly_once import KeptReply, Request, encoded_reply, request_of
from infra.metrics import GROUP_COMMIT_SIZE

Decide = Callable[[DatabaseAccess, Sequence[Any]], list[Any]]


class Batches:
    """`submit(item)` from concurrent green threads: the item's answer, once `handle` has
    answered the batch it joined. A batch is whatever was handed in while the previous one
    was handled (at most `max_batch`): an idle caller waits for nothing. `handle(batch)`
    gets (item, Event) pairs and sends each Event its answer; if it raises, every pair it
    left unanswered gets that error."""

    def __init__(
        self,
        handle: Callable[[list[tuple[Any, Event]]], None],
        spawn: Callable[[Callable[[], None]], Any],
        max_batch: int = 32,
    ):
        self.handle = handle
        self.spawn = spawn  # starts a green thread (the container's, to be killed with it)
        self.max_batch = max_batch
        self._waiting: deque[tuple[Any, Event]] = deque()
        self._handling = False

    def submit(self, item: Any) -> Any:
        answered = Event()
        self._waiting.append((item, answered))
        if not self._handling:
            self._handling = True  # until nothing waits
            # runs once this caller waits below; by then others may have handed theirs in
            self.spawn(self._handle_waiting)
        return answered.wait()

    def _handle_waiting(self) -> None:
        try:
            while self._waiting:
                count = min(self.max_batch, len(self._waiting))
                batch = [self._waiting.popleft() for _ in range(count)]
                try:
                    self.handle(batch)
                except Exception:
                    for _, answered in batch:
                        if not answered.ready():
                            answered.send_exception(*sys.exc_info())
        finally:
            self._handling = False


class GroupCommit(DependencyProvider):
    """`self.<name>(item)` in a worker: the item's outcome, decided with the items other
    workers handed in meanwhile; a ServiceError outcome is raised in that worker."""

    def __init__(self, decide: Decide, max_batch: int = 32, outcome_is_reply: bool = False):
        self.decide = decide
        self.max_batch = max_batch
        # the RPC methods using it answer the outcome unchanged: stored with the effect
        self.outcome_is_reply = outcome_is_reply

    def setup(self) -> None:
        self.work = f"{self.container.service_name}.{self.attr_name}"
        self._batches = Batches(
            self._decide_batch,
            partial(self.container.spawn_managed_thread, identifier=self.work),
            self.max_batch,
        )
        # resolved once, and exported from 0
        self._batch_size = GROUP_COMMIT_SIZE.labels(self.container.service_name, self.work)
        # replies stored with the effect are encoded as the service's callers encode their
        # requests (nameko's `serializer`); a request in another one gets its own (infra.rpc)
        serializer = self.container.config.get("serializer", "json")
        self.content_type = kombu.serialization.registry.name_to_type[serializer]

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
        return self._batches.submit((item, request))

    def _decide_batch(self, batch: list[tuple[tuple[Any, Request | None], Event]]) -> None:
        requests = [request for (_, request), _ in batch]
        self.db.requests = [request for request in requests if request is not None]
        kept: list[tuple[Request, KeptReply]] = []
        try:
            holding = self.db.replies_at_commit() if self.outcome_is_reply else nullcontext()
            with holding as held:
                outcomes = self.decide(self.db, [item for (item, _), _ in batch])
                if len(outcomes) != len(batch):
                    raise RuntimeError(f"{self.work}: {len(outcomes)} outcomes for {len(batch)}")
                if held is not None:
                    kept = self._keep_replies(held, requests, outcomes)
        except Exception as exc:
            if len(batch) == 1 or is_transient(exc):  # the database is away: for every item
                for _, answered in batch:
                    answered.send_exception(*sys.exc_info())
                return
            for one in batch:  # which item broke it is not known: each decided alone
                self._decide_batch([one])
            return
        for request, reply in kept:  # committed: the responder sends them as they are
            request.reply = reply
        self._batch_size.observe(len(batch))
        for (_, answered), outcome in zip(batch, outcomes, strict=True):
            if isinstance(outcome, ServiceError):
                answered.send_exception(outcome)
            else:
                answered.send(outcome)

    def _keep_replies(
        self, held: HeldCommit, requests: list[Request | None], outcomes: list[Any]
    ) -> list[tuple[Request, KeptReply]]:
        """The replies of the requests the held transaction recorded, encoded as infra.rpc
        encodes them (a refusal as its serialized error) and written in that transaction;
        none if it is no longer held. An outcome that does not encode is left to the
        responder, which answers it as it does any other."""
        recorded = {id(request) for request in held.requests}
        kept = []
        for request, outcome in zip(requests, outcomes, strict=True):
            if request is None or id(request) not in recorded:
                continue
            refused = isinstance(outcome, ServiceError)
            try:
                body, encoding = encoded_reply(
                    None if refused else outcome,
                    serialize(outcome) if refused else None,
                    self.content_type,
                )
            except Exception:
                continue
            kept.append((request, KeptReply(outcome, self.content_type, body, encoding)))
        if not held.keep([(request, reply.text) for request, reply in kept]):
            return []
        return kept
