"""Requests applied once: a request delivered again returns the reply it got the first time.

RPC over RabbitMQ is at least once: a service whose connection drops after it acted but
before it acknowledged the request gets that request again (itself once reconnected, or
another replica). So the gateway gives every call that may change something a request id
(nameko context data `request_id`, header `nameko.request_id`), and a service:

1. before its method runs, looks the id up in `rpc_requests`: a reply stored there is sent
   again, and the method does not run (`Database.worker_setup`);
2. records the id in the first transaction the method commits, with its effect
   (`DatabaseAccess.transaction`, or a GroupCommit's batch): `INSERT … ON CONFLICT DO
   NOTHING` at the start of the transaction, so a second delivery running at the same time
   waits on the first's row (PostgreSQL; SQLite's writers take turns) and then finds it;
3. once the method has returned, stores the encoded reply on that row, then sends it
   (`infra.rpc.PatientRpcConsumer`).

A process killed between the commit of 2 and the end of 3 leaves an effect without its
reply: the repeated request then answers Conflict (409 at the gateway) rather than
act again. A method that commits nothing (a read, a refusal) records nothing: delivered
again, it runs again, which changes nothing either.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import eventlet
from nameko.rpc import Rpc
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session

from contracts.errors import Conflict
from infra.messaging_tables import rpc_requests

REQUEST_ID = "request_id"  # key of nameko's context data
# how long a repeated request waits for the first delivery's reply to be stored (the
# first may still be running: it committed its effect, its reply is on its way); longer
# than the gateway's deadline (GATEWAY_RPC_TIMEOUT_SECONDS, 10 s), so that a caller still
# waiting gets the first reply, never the Conflict of a first delivery that died
REPLY_WAIT_SECONDS = 15.0
_MAX_ID = 64


def new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Request:
    """The RPC request a worker applies, when its caller gave it an id."""

    request_id: str
    method: str
    recorded: bool = False  # committed with the request's effect


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
    """The reply stored for a request applied before, once it is stored; Conflict if it
    is not within REPLY_WAIT_SECONDS (its process died between the effect's commit and the
    reply)."""
    deadline = time.monotonic() + REPLY_WAIT_SECONDS
    while True:
        reply = stored_reply(engine, request_id)
        if reply is not None:
            return reply
        if time.monotonic() > deadline:
            raise Conflict(
                "This request was already applied; its answer was not kept: read the "
                "current state instead"
            )
        eventlet.sleep(0.05)


def keep_reply(engine: Engine, request: Request, reply: str) -> None:
    """Stores the encoded reply of a request recorded with its effect (one statement: on
    an autocommit engine, one round trip)."""
    with engine.begin() as conn:
        conn.execute(
            update(rpc_requests)
            .where(rpc_requests.c.request_id == request.request_id)
            .values(reply=reply)
        )
