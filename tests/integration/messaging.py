"""Publishing events straight on the broker, as a relay would, and looking at queues."""

from __future__ import annotations

import json

from kombu import Connection, Producer

from contracts.listings import ListingPublished, ListingSnapshot
from infra.topology import source_exchange


def listing_published(
    title: str = "Chasse-neige",
    owner: str = "42044",
    listing_id: str = "00000000-0000-0000-0000-000000000001",
    revision: int = 1,
) -> ListingPublished:
    snapshot = ListingSnapshot(
        listing_id=listing_id,
        owner_commune=owner,
        status="published",
        revision=revision,
        title=title,
        category="deneigement",
        kind="vehicle",
        pricing_unit="day",
        rate_cents=42000,
    )
    return ListingPublished.new(snapshot, producer="listings", correlation_id="test")


def publish_raw(
    amqp_uri: str,
    body: str | bytes,
    routing_key: str,
    source: str = "listings",
    content_type: str = "application/json",
) -> None:
    """Publishes as the relay does (persistent, confirmed)."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        producer.publish(
            body,
            exchange=source_exchange(source),
            routing_key=routing_key,
            content_type=content_type,
            content_encoding="utf-8",
            delivery_mode=2,
        )


def publish_event(amqp_uri: str, event) -> None:
    publish_raw(amqp_uri, json.dumps(event.model_dump(mode="json")), event.type, event.producer)


def publish_all(amqp_uri: str, events) -> None:
    """Publishes `events` as the relay does a batch: persistent, confirmed, on one
    connection, one after the other."""
    with Connection(amqp_uri, transport_options={"confirm_publish": True}) as conn:
        producer = Producer(conn.channel())
        for event in events:
            producer.publish(
                json.dumps(event.model_dump(mode="json")),
                exchange=source_exchange(event.producer),
                routing_key=event.type,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=2,
            )


def queue_depth(amqp_uri: str, queue: str) -> int:
    with Connection(amqp_uri) as conn:
        channel = conn.channel()
        _, count, _ = channel.queue_declare(queue, passive=True)
        return count
