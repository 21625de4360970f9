"""Operator access to dead-lettered events: list them, and replay them to their consumer."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

from kombu import Connection, Producer

from contracts.topology import SUBSCRIPTIONS, Subscription


def _subscriptions(queue: str | None, known: Iterable[Subscription]) -> list[Subscription]:
    chosen = [s for s in known if queue in (None, s.queue, s.dead_letter_queue)]
    if not chosen:
        raise SystemExit(f"no subscription named {queue!r}")
    return chosen


def _describe(sub: Subscription, message) -> dict:
    headers = message.headers or {}
    try:
        body = json.loads(message.body)
    except (ValueError, TypeError):
        body = None
    # a message the broker dead-lettered itself (rejected undecodable) carries x-death only
    rejected = "x-death" in headers and "x-mutualis-reason" not in headers
    return {
        "queue": sub.dead_letter_queue,
        "consumer": headers.get("x-mutualis-consumer", sub.consumer),
        "reason": "undecodable" if rejected else headers.get("x-mutualis-reason"),
        "error": headers.get("x-mutualis-error"),
        "dead_lettered_at": headers.get("x-mutualis-dead-lettered-at"),
        "event_type": body.get("type") if isinstance(body, dict) else None,
        "event_id": body.get("event_id") if isinstance(body, dict) else None,
        "body": body if body is not None else repr(message.body)[:500],
    }


def list_dead_letters(
    conn: Connection, queue: str | None = None, known: Iterable[Subscription] = SUBSCRIPTIONS
) -> Iterator[dict]:
    """Reads without consuming: every message is returned to its queue afterwards."""
    for sub in _subscriptions(queue, known):
        channel = conn.channel()
        try:
            while (message := channel.basic_get(sub.dead_letter_queue, no_ack=False)) is not None:
                yield _describe(sub, message)
        finally:
            channel.close()  # unacknowledged messages go back to the queue


def replay_dead_letters(
    conn: Connection,
    queue: str | None = None,
    limit: int = 1000,
    known: Iterable[Subscription] = SUBSCRIPTIONS,
) -> int:
    """Moves messages back to their consumer's queue; each is acked only once re-published."""
    moved = 0
    confirmed = Connection(
        conn.as_uri(include_password=True), transport_options={"confirm_publish": True}
    )
    with confirmed:
        producer = Producer(confirmed.channel())
        for sub in _subscriptions(queue, known):
            channel = conn.channel()
            try:
                while moved < limit:
                    message = channel.basic_get(sub.dead_letter_queue, no_ack=False)
                    if message is None:
                        break
                    headers = dict(message.headers or {})
                    headers["x-mutualis-replays"] = int(headers.get("x-mutualis-replays", 0)) + 1
                    producer.publish(
                        message.body,
                        exchange="",
                        routing_key=sub.queue,
                        content_type=message.content_type,
                        content_encoding=message.content_encoding,
                        delivery_mode=2,
                        headers=headers,
                    )
                    channel.basic_ack(message.delivery_tag)
                    moved += 1
            finally:
                channel.close()
    return moved


def queue_depths(conn: Connection, known: Iterable[Subscription] = SUBSCRIPTIONS) -> list[dict]:
    """Each subscription's messages waiting for their consumer and parked as dead letters,
    and how many consumers listen, read without touching a message (a passive declare); a
    queue not declared yet counts as None."""
    depths = []
    for sub in known:
        row = {"subscription": sub, "queue": sub.queue}
        for key, queue in (("waiting", sub.queue), ("dead_letters", sub.dead_letter_queue)):
            channel = conn.channel()
            try:
                _, count, consumers = channel.queue_declare(queue, passive=True)
            except conn.channel_errors:  # NOT_FOUND closes the channel
                count, consumers = None, None
            else:
                channel.close()
            row[key] = count
            if key == "waiting":
                row["consumers"] = consumers
        depths.append(row)
    return depths
