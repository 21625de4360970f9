"""Requests applied once: a request delivered again returns the reply it got the first time.

RPC over RabbitMQ is at least once: a service whose connection drops after it acted but
before it acknowledged the request gets that request again (itself once reconnected, or
another replica). So the gateway gives every call that may change something a request id
(nameko context data `request_id`, header `nameko.request_id`), and a service:

1. before its method runs, if the request may have come before, looks the id up in
   `rpc_requests`: a reply stored there is sent again, and the method does not run
   (`Database.worker_setup`). A request may have come before when the broker delivers it
   again (`redelivered`, infra.rpc) or when the gateway says so (context data
   `request_maybe_repeated`: its id is derived from an Idempotency-Key, which a retry
   repeats); any other delivery is a first one, or one racing the first, which the lookup
   could not tell apart anyway (the first has committed nothing yet, or no reply yet);
2. records the id in the first transaction the method commits, with its effect
   (`DatabaseAccess.transaction`, or a GroupCommit's batch): `INSERT … ON CONFLICT DO
   NOTHING` at the start of the transaction, so a second delivery running at the same time
   waits on the first's row (PostgreSQL; SQLite's writers take turns) and then finds it.
   This is the guard: a repeat that skipped (or passed) the lookup stops here;
3. stores the encoded reply on that row, then sends it. Where the method's reply is the
   outcome of a GroupCommit marked `outcome_is_reply` (bookings' requests), the reply is
   encoded and stored in the batch's own transaction, before its COMMIT
   (`DatabaseAccess.replies_at_commit`): effect and reply commit together, and the reply
   sent is the one stored (`KeptReply`). Elsewhere, once the method has returned
   (`infra.rpc.PatientRpcConsumer`): the replies of concurrent workers in one statement,
   committed without waiting for the WAL flush (`keep_replies`).

A process killed between the commit of 2 and the end of 3 (where they are apart) leaves an
effect without its reply: the repeated request then answers Conflict (409 at the gateway)
rather than act again, after waiting for the reply up to REPLY_WAIT_SECONDS from the
record. So does a PostgreSQL crash that loses a reply not yet flushed: the effect's
commit, earlier and synchronous, is on disk, and any later commit flushed the reply with
it. A method that commits nothing (a read, a refusal) records nothing: delivered again, it
runs again, which changes nothing either.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import eventlet
import kombu.serialization
from nameko.rpc import Rpc
from sqlalchemy import Connection, Engine, bindparam, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from contracts.errors import Conflict
from infra.messaging_tables import rpc_requests

REQUEST_ID = "request_id"  # key of nameko's context data
# context data saying the request may have come before: look its reply up first
MAYBE_REPEATED = "request_maybe_repeated"
# how long after the first delivery recorded the request a repeat waits for its reply to
# be stored (the first may still be running: it committed its effect, its reply is on its
# way); longer than the gateway's deadline (GATEWAY_RPC_TIMEOUT_SECONDS, 10 s), so that a
# caller still waiting gets the first reply, never the Conflict of a first delivery that
# died; a retry after that is answered the Conflict at once
REPLY_WAIT_SECONDS = 15.0
_MAX_ID = 64


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class KeptReply:
    """A reply encoded and stored in the transaction of its request's effect (a GroupCommit
    whose outcome is the reply): what the responder sends as it is, neither encoded nor
    stored again, when the method answered that very outcome in that content type."""

    outcome: Any  # the result, or the ServiceError raised
    content_type: str
    body: str | bytes  # as kombu's serializer made it
    encoding: str

    @property
    def text(self) -> str:
        """As stored in rpc_requests.reply."""
        return self.body.decode() if isinstance(self.body, bytes) else self.body

    def answers(self, result: Any, exc_info: tuple | None, content_type: str) -> bool:
        """Whether the method's answer is this outcome, unchanged (the same object: a
        method that built another answer from it gets that one encoded and stored)."""
        answer = exc_info[1] if exc_info is not None else result
        return answer is self.outcome and content_type == self.content_type


@dataclass
class Request:
    """The RPC request a worker applies, when its caller gave it an id."""

    request_id: str
    method: str
    recorded: bool = False  # committed with the request's effect
    maybe_repeated: bool = False  # delivered again, or sent again by the gateway
    reply: KeptReply | None = None  # stored with the effect, if its outcome is the reply


def encoded_reply(result: Any, error: dict | None, content_type: str) -> tuple[str | bytes, str]:
    """An RPC reply's body and encoding as nameko makes it ({"result", "error"} through
    kombu's serializer registered for the request's content type): the one encoding of the
    reply sent (infra.rpc) and of the reply stored with its effect, so both are the same
    bytes."""
    serializer = kombu.serialization.registry.type_to_name[content_type]
    _, encoding, body = kombu.serialization.dumps({"result": result, "error": error}, serializer)
    return body, encoding


class RepeatedRequest(Exception):
    """This request was applied before: `reply` (the encoded reply then, if stored) is
    the answer, and nothing is done again."""

    def __init__(self, request: Request, reply: str | None = None):
        super().__init__(f"request {request.request_id} to {request.method} was applied before")
        self.request = request
        self.reply = reply


def request_of(worker_ctx) -> Request | None:
    """The request of an RPC worker whose caller gave an id; None for any other worker.
    One per worker: the database access, a group commit and the reply share it."""
    try:
        return worker_ctx.exactly_once_request
    except AttributeError:
        pass
    request_id = worker_ctx.data.get(REQUEST_ID)
    request = None
    if request_id and isinstance(worker_ctx.entrypoint, Rpc):
        request = Request(
            str(request_id)[:_MAX_ID],
            f"{worker_ctx.container.service_name}.{worker_ctx.entrypoint.method_name}",
            maybe_repeated=bool(worker_ctx.data.get(MAYBE_REPEATED)),
        )
    worker_ctx.exactly_once_request = request
    return request


def record(session: Session, requests: Sequence[Request]) -> None:
    """Records `requests` in the transaction of `session`, before their effect; raises
    RepeatedRequest for the first one recorded before (the transaction is then to be
    rolled back)."""
    from infra.database import insert_new  # infra.database builds on this module

    now = datetime.now(UTC)
    recorded = set(
        insert_new(
            session,
            rpc_requests,
            [
                {"request_id": r.request_id, "method": r.method, "received_at": now}
                for r in requests
            ],
            returning="request_id",
        )
    )
    for request in requests:
        if request.request_id not in recorded:
            raise RepeatedRequest(request)
        recorded.discard(request.request_id)  # the same id again in this batch is a repeat


def stored_reply(engine: Engine, request_id: str) -> str | None:
    with engine.connect() as conn:
        return conn.scalar(
            select(rpc_requests.c.reply).where(rpc_requests.c.request_id == request_id)
        )


def awaited_reply(engine: Engine, request_id: str) -> str:
    """The reply stored for a request applied before, once it is stored; Conflict once
    REPLY_WAIT_SECONDS have passed since the request was recorded with its effect (its
    process died between the effect's commit and the reply). Counted from the record, not
    from this delivery: a caller retrying after that is answered at once. Counted from
    each delivery, every retry waited the whole while again, longer than the gateway's
    deadline, and the caller saw only 503s (a drill's client: 17 in 85 s after a bookings
    replica was killed) until it gave up."""
    deadline = time.monotonic() + REPLY_WAIT_SECONDS  # the record gone: from now
    while True:
        with engine.connect() as conn:
            row = conn.execute(
                select(rpc_requests.c.reply, rpc_requests.c.received_at).where(
                    rpc_requests.c.request_id == request_id
                )
            ).first()
        if row is not None and row.reply is not None:
            return row.reply
        if row is not None:
            waited = (datetime.now(UTC) - row.received_at).total_seconds()
            deadline = min(deadline, time.monotonic() + REPLY_WAIT_SECONDS - waited)
        if time.monotonic() > deadline:
            raise Conflict(
                "This request was already applied; its answer was not kept: read the "
                "current state instead"
            )
        eventlet.sleep(0.05)


def keep_replies(engine: Engine, kept: Sequence[tuple[Request, str]]) -> None:
    """Stores the encoded replies of requests recorded with their effects, in one statement
    (on PostgreSQL, `engine` is `infra.database.reply_keeper`'s: one round trip, committed
    without waiting for the WAL flush). A connection found dead (PostgreSQL restarted
    since this pool's last use) costs a second try on a new one, not the replies: the
    statement sets what it sets however often it runs."""
    try:
        _keep(engine, kept)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
        _keep(engine, kept)  # the pool has dropped its dead connections meanwhile


def _keep(engine: Engine, kept: Sequence[tuple[Request, str]]) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            store_replies(conn, kept)
        return
    with engine.begin() as conn:
        store_replies(conn, kept)


def store_replies(conn: Connection | Session, kept: Sequence[tuple[Request, str]]) -> None:
    """Sets the replies of recorded requests, in the transaction of `conn` (or alone on
    an autocommit one): on PostgreSQL one statement for all, elsewhere one execution."""
    if not kept:
        return
    dialect = conn.get_bind().dialect if isinstance(conn, Session) else conn.dialect
    if dialect.name == "postgresql":
        conn.execute(
            _KEEP_ALL,
            {
                "ids": [request.request_id for request, _ in kept],
                "replies": [reply for _, reply in kept],
            },
        )
        return
    conn.execute(
        _KEEP_ONE,
        [{"kept_id": request.request_id, "kept_reply": reply} for request, reply in kept],
    )


# one statement for any number of replies, compiled once: the rows as two arrays
_KEEP_ALL = text(
    f"UPDATE {rpc_requests.name} SET reply = kept.reply "
    "FROM unnest(CAST(:ids AS varchar[]), CAST(:replies AS text[])) AS kept(request_id, reply) "
    f"WHERE {rpc_requests.name}.request_id = kept.request_id"
)
_KEEP_ONE = (
    update(rpc_requests)
    .where(rpc_requests.c.request_id == bindparam("kept_id"))
    .values(reply=bindparam("kept_reply"))
)
