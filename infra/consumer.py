"""An event-handler entrypoint that applies each event once and never loses or blocks.

- The body is parsed into its typed event; a message that does not parse goes straight
  to the subscription's dead-letter queue.
- The handler applies the event inside `self.db.handling(event)`, which records
  (consumer, event_id) in the same transaction: a duplicate is acknowledged, counted, and
  changes nothing.
- Transient failures (database or broker unavailable) are retried with capped backoff for
  as long as they last; any other failure is retried a few times, then dead-lettered with
  its error. A poison message holds one worker while it is retried, never the queue.
- Once the handler has committed, the lag from the event's own commit (the header the relay
  sets from PostgreSQL's commit timestamp) is observed in `mutualis_event_lag_seconds`, the
  age since its `occurred_at` in `mutualis_event_age_seconds`.
- `consume_event_batches` hands the events waiting in the queue to one worker together, so
  a busy consumer pays one transaction for many events (see EventBatchConsumer).

Every hop of an event waits for a core, so what the consumer itself spends per event counts
(`python -m bench.consume` measures a billing process): a JSON body is read by kombu's decoder
for its content type, which a service's nameko config makes orjson's (infra.codec), the
event is handed to a worker from the queue consumer's own green thread rather than from one
more spawned per message, and each consumer keeps its metrics' labelled children rather than
looking them up at every event.
"""

from __future__ import annotations

import logging
import socket
import time
import traceback
from collections import deque
from datetime import UTC, datetime
from functools import partial

import eventlet
from kombu import Connection
from kombu import Consumer as KombuConsumer
from kombu.pools import producers
from nameko.containers import ServiceContainer, WorkerContext
from nameko.exceptions import ContainerBeingKilled
from nameko.messaging import Consumer
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from contracts.events import parse_event
from contracts.topology import Subscription, event_exchange
from infra.acks import BrokerTolerantQueueConsumer
from infra.database import DuplicateEvent
from infra.logs import correlation_id_var
from infra.metrics import (
    DEAD_LETTERED,
    DUPLICATES_SKIPPED,
    EVENT_AGE,
    EVENT_BATCH_SIZE,
    EVENT_DURATION,
    EVENT_LAG,
    EVENTS_HANDLED,
)
from infra.relay import COMMITTED_AT_HEADER
from infra.topology import consumer_queue, dead_letter_exchange, declare_subscription

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
BACKOFF_BASE_SECONDS = 0.2
BACKOFF_CAP_SECONDS = 10.0


def is_transient(exc: BaseException) -> bool:
    """Failures that say "not now" rather than "never": retried without limit."""
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError | PoolTimeout | ConnectionError | socket.error)


def backoff(attempt: int) -> float:
    return min(BACKOFF_BASE_SECONDS * 2 ** (attempt - 1), BACKOFF_CAP_SECONDS)


def commit_lag(headers: dict | None, now: float) -> float | None:
    """Seconds from the event's commit (its relay's header) to `now`, a time.time(); None
    when the message came without it (commit times not tracked, or SQLite)."""
    committed = (headers or {}).get(COMMITTED_AT_HEADER)
    if not isinstance(committed, int):
        return None
    return max(now - committed / 1e6, 0.0)


class _PrefetchingConsumer(KombuConsumer):
    """Sets its own prefetch right before it consumes: RabbitMQ gives a consumer the
    channel's prefetch at basic.consume, and nameko's consumers share one channel. (Set as
    an attribute after construction: given to kombu's constructor, it would send basic.qos
    at once, before the other consumers' basic.consume.)"""

    def consume(self, no_ack=None):
        self.qos(prefetch_count=self.prefetch_count)
        super().consume(no_ack)


# a worker is handed its event at once while the container's pool has one free: nameko
# 2.14 spawns its workers in `_worker_pool` (an eventlet GreenPool), which it has no public
# name for; another nameko is refused here rather than read wrongly
if "_worker_pool" not in ServiceContainer.spawn_worker.__code__.co_names:
    raise ImportError("nameko's ServiceContainer no longer spawns its workers in _worker_pool")


class DeadLetteringQueueConsumer(BrokerTolerantQueueConsumer):
    """A body that cannot even be decoded is rejected to the dead-letter queue, not dropped
    (kombu's default acknowledges it and it is gone). Each queue is consumed with its
    provider's `prefetch_count`: a batch holds at most what the broker lets the consumer
    hold unacknowledged, where nameko gives every queue max_workers (10), which would cap
    every batch."""

    def setup(self) -> None:
        super().setup()
        self._free_workers = self.container._worker_pool.free  # see the ImportError above

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            consumer = _PrefetchingConsumer(
                channel,
                queues=[provider.queue],
                callbacks=[partial(self.handle_message, provider)],
                accept=self.accept,
                on_decode_error=self.on_decode_error,
            )
            consumer.prefetch_count = provider.prefetch_count
            self._consumers[provider] = consumer
        return self._consumers.values()

    def handle_message(self, provider, body, message) -> None:
        """nameko spawns a green thread per message to hand it to its provider, which
        spawns the worker: while the service has a worker free, that spawn cannot wait, so
        the message is handed over from this thread (one spawn and switch fewer per
        event). With every worker busy it waits in a thread of its own, as in nameko, and
        the broker's messages keep being read meanwhile."""
        if self._free_workers():
            provider.handle_message(body, message)
        else:
            super().handle_message(provider, body, message)

    def on_decode_error(self, message, exc) -> None:
        message.reject(requeue=False)  # first: nothing below may stop it
        info = message.delivery_info
        consumer = next(
            (
                p.consumer_name
                for p in self._providers
                if info.get("routing_key") in p.subscription.event_types
                and info.get("exchange") == event_exchange(p.subscription.source)
            ),
            "unknown",
        )
        DEAD_LETTERED.labels(self.container.service_name, consumer, "undecodable").inc()
        log.error("%s dead-lettered an undecodable message: %s", consumer, exc)


class EventConsumer(Consumer):
    queue_consumer = DeadLetteringQueueConsumer()

    def __init__(self, subscription: Subscription, max_attempts: int = MAX_ATTEMPTS, **kwargs):
        self.subscription = subscription
        self.max_attempts = max_attempts
        super().__init__(queue=consumer_queue(subscription), **kwargs)

    @property
    def prefetch_count(self) -> int:
        """Events the broker hands over before any is acknowledged: one per worker."""
        return self.container.max_workers

    def setup(self) -> None:
        self.service = self.container.service_name
        self.consumer_name = f"{self.service}.{self.method_name}"
        self.amqp_uri = self.container.config["AMQP_URI"]
        self._children: dict[tuple, object] = {}  # see _child
        # export zeros from the start, so that rate() and increase() see the first one
        self._child(DUPLICATES_SKIPPED)
        for reason in ("failed", "unparseable", "undecodable"):
            self._child(DEAD_LETTERED, reason)
        self._child(EVENT_DURATION)
        self._child(EVENT_AGE)
        for event_type in self.subscription.event_types:  # SQLite's never get a lag
            self._child(EVENT_LAG, event_type)
        with Connection(self.amqp_uri) as conn, conn.channel() as channel:
            declare_subscription(channel, self.subscription)
        super().setup()

    # -- delivery ---------------------------------------------------------------------

    def handle_message(self, body, message) -> None:
        """In the queue consumer's thread (DeadLetteringQueueConsumer.handle_message): a
        message that does not parse is parked from a thread of its own, which waits for
        the broker's confirm."""
        try:
            event = parse_event(body)
        except ValueError as exc:
            error = f"{type(exc).__name__}: {exc}"
            self.container.spawn_managed_thread(
                partial(self._dead_letter, body, message, "unparseable", error, "?"),
                identifier=f"{self.consumer_name}.dead_letter",
            )
            return
        self._received(event, message)

    def _child(self, metric, *labels: str):
        """`metric`'s child for this consumer and `labels`: looked up at its first use, then
        kept (prometheus_client's look-up takes a lock and builds its key at every call)."""
        key = (metric, labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self.service, self.consumer_name, *labels)
        return child

    def _received(self, event, message) -> None:
        self._spawn(event, message, attempt=1)

    def _arguments(self, event) -> tuple:
        """What the handler is called with for one event."""
        return (event,)

    def _spawn(self, event, message, attempt: int) -> None:
        context_data = self.unpack_message_headers(message)
        if event.correlation_id:
            context_data["correlation_id"] = event.correlation_id
        handle_result = partial(self.handle_result_of, event, message, attempt, time.perf_counter())
        try:
            self.container.spawn_worker(
                self,
                self._arguments(event),
                {},
                context_data=context_data,
                handle_result=handle_result,
            )
        except ContainerBeingKilled:
            self.queue_consumer.requeue_message(message)

    def handle_result_of(
        self,
        event,
        message,
        attempt,
        started,
        worker_ctx: WorkerContext,
        result=None,
        exc_info=None,
    ):
        event_type = event.type
        self._child(EVENT_DURATION).observe(time.perf_counter() - started)
        if exc_info is None:
            self.queue_consumer.ack_message(message)
            self._child(EVENTS_HANDLED, event_type, "ok").inc()
            log.info("%s applied %s %s", self.consumer_name, event_type, event.event_id)
            self._observe_lag(event, message, time.time())
            return result, exc_info
        exc = exc_info[1]
        if isinstance(exc, DuplicateEvent):
            self.queue_consumer.ack_message(message)
            self._child(EVENTS_HANDLED, event_type, "duplicate").inc()
            self._child(DUPLICATES_SKIPPED).inc()
            log.info("duplicate %s %s skipped", event_type, event.event_id)
            return result, None
        if is_transient(exc) or attempt < self.max_attempts:
            self._child(EVENTS_HANDLED, event_type, "retried").inc()
            delay = backoff(attempt)
            log.warning(
                "%s of %s failed (attempt %d): %s; retrying in %.1fs",
                self.consumer_name,
                event.event_id,
                attempt,
                exc,
                delay,
            )
            self.container.spawn_managed_thread(
                partial(self._retry_later, event, message, attempt + 1, delay),
                identifier=f"{self.consumer_name}.retry",
            )
            return result, exc_info
        error = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        self._dead_letter(message.body, message, "failed", error, event_type)
        return result, exc_info

    def _observe_lag(self, event, message, now: float) -> None:
        """After the handler's commit: how long since the event's commit, and its age."""
        lag = commit_lag(message.headers, now)
        if lag is not None:
            self._child(EVENT_LAG, event.type).observe(lag)
        self._child(EVENT_AGE).observe(max(now - event.occurred_at.timestamp(), 0.0))

    def _retry_later(self, event, message, attempt: int, delay: float) -> None:
        eventlet.sleep(delay)
        self._spawn(event, message, attempt)

    def _dead_letter(self, body, message, reason: str, error: str, event_type: str) -> None:
        """Park the message, with why, in the subscription's dead-letter queue, then ack it."""
        headers = dict(message.headers or {})
        headers.update(
            {
                "x-mutualis-reason": reason,
                "x-mutualis-error": error[:2000],
                "x-mutualis-consumer": self.consumer_name,
                "x-mutualis-original-queue": self.subscription.queue,
                "x-mutualis-dead-lettered-at": datetime.now(UTC).isoformat(),
            }
        )
        raw = message.body if isinstance(message.body, bytes | str) else body
        with (
            Connection(self.amqp_uri, transport_options={"confirm_publish": True}) as conn,
            producers[conn].acquire(block=True) as producer,
        ):
            producer.publish(
                raw,
                exchange=dead_letter_exchange,
                routing_key=self.subscription.dead_letter_queue,
                content_type=message.content_type,
                content_encoding=message.content_encoding,
                delivery_mode=2,
                headers=headers,
                retry=True,
            )
        self.queue_consumer.ack_message(message)
        self._child(DEAD_LETTERED, reason).inc()
        self._child(EVENTS_HANDLED, event_type, "dead_lettered").inc()
        log.error("%s dead-lettered a message (%s): %s", self.consumer_name, reason, error)


class EventBatchConsumer(EventConsumer):
    """Hands the handler a list of events: all those waiting, up to `max_batch`.

    One batch is applied at a time; the events arriving meanwhile make the next batch. The
    first event after a pause waits `linger` (10 ms) for the rest of its burst: a relay
    publishes in bursts (what committed while its previous batch was out), and RabbitMQ
    delivers such a burst over a few milliseconds. Without the wait a burst of 20 made
    five transactions; with it, one (the handler uses `self.db.handling_all(events)`),
    and the listings service's CPU per booking event fell by half. The broker lets the
    consumer hold `max_batch` unacknowledged events, so that the prefetch does not cap the batch.
    A batch that fails is split: each of its events is then handled on its own, with the
    retries and dead-lettering of EventConsumer, so a poison event parks only itself.
    """

    def __init__(
        self, subscription: Subscription, max_batch: int = 100, linger: float = 0.01, **kwargs
    ):
        self.max_batch = max_batch
        self.linger = linger
        super().__init__(subscription, **kwargs)

    @property
    def prefetch_count(self) -> int:
        return self.max_batch

    def setup(self) -> None:
        self._waiting: deque = deque()
        self._applying = False
        super().setup()

    def _arguments(self, event) -> tuple:
        return ([event],)

    def _received(self, event, message) -> None:
        self._waiting.append((event, message))
        if not self._applying:
            self._applying = True  # from now until the batch is applied
            # runs once this (the queue consumer's) green thread waits for the broker, that
            # is once the messages already received are all in _waiting
            self.container.spawn_managed_thread(
                self._apply_after_linger, identifier=f"{self.consumer_name}.batch"
            )

    def _apply_after_linger(self) -> None:
        """The first batch after a pause: once the rest of its burst is in, or is full."""
        if self.linger and len(self._waiting) < self.max_batch:
            eventlet.sleep(self.linger)
        self._apply_next_batch()

    def _apply_next_batch(self) -> None:
        """Hands what waits to a worker; `_applying` stays set until its result is in."""
        if not self._waiting:
            self._applying = False
            return
        batch = [self._waiting.popleft() for _ in range(min(self.max_batch, len(self._waiting)))]
        context_data = self.unpack_message_headers(batch[0][1])
        if len(batch) == 1 and batch[0][0].correlation_id:  # a batch of many has many ids
            context_data["correlation_id"] = batch[0][0].correlation_id
        try:
            self.container.spawn_worker(
                self,
                ([event for event, _ in batch],),
                {},
                context_data=context_data,
                handle_result=partial(self.batch_result, batch, time.perf_counter()),
            )
        except ContainerBeingKilled:
            self._applying = False
            for _, message in batch:
                self.queue_consumer.requeue_message(message)

    def batch_result(self, batch, started, worker_ctx: WorkerContext, result=None, exc_info=None):
        elapsed = time.perf_counter() - started
        if exc_info is None:
            self._child(EVENT_BATCH_SIZE).observe(len(batch))
            now = time.time()
            for event, message in batch:
                self.queue_consumer.ack_message(message)
                self._child(EVENTS_HANDLED, event.type, "ok").inc()
                self._child(EVENT_DURATION).observe(elapsed)
                self._observe_lag(event, message, now)
                token = correlation_id_var.set(event.correlation_id)  # its own, in the log
                log.info("%s applied %s %s", self.consumer_name, event.type, event.event_id)
                correlation_id_var.reset(token)
        elif len(batch) == 1:  # as EventConsumer would: retry or dead-letter it
            event, message = batch[0]
            result, exc_info = self.handle_result_of(
                event, message, 1, started, worker_ctx, result, exc_info
            )
        else:
            log.warning(
                "%s failed on a batch of %d events (%s); handling each on its own",
                self.consumer_name,
                len(batch),
                exc_info[1],
            )
            for event, message in batch:
                self._spawn(event, message, attempt=1)
        self._apply_next_batch()  # what arrived meanwhile, at once
        return result, exc_info


consume_events = EventConsumer.decorator
consume_event_batches = EventBatchConsumer.decorator
