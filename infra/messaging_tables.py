"""Tables every service database carries for reliable messaging: outbox and processed events."""

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from infra.types import UtcDateTime

metadata = MetaData()

outbox = Table(
    "outbox",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("event_id", String(36), nullable=False, unique=True),
    Column("exchange", String(100), nullable=False),
    Column("routing_key", String(100), nullable=False),
    Column("body", Text, nullable=False),
    Column("correlation_id", String(100)),
    Column("created_at", UtcDateTime, nullable=False),
    Column("published_at", UtcDateTime),
    Index(
        "ix_outbox_pending",
        "id",
        postgresql_where=text("published_at IS NULL"),
        sqlite_where=text("published_at IS NULL"),
    ),
)

processed_events = Table(
    "processed_events",
    metadata,
    Column("consumer", String(150), primary_key=True),
    Column("event_id", String(36), primary_key=True),
    Column("event_type", String(100), nullable=False),
    Column("processed_at", UtcDateTime, nullable=False),
)

# PostgreSQL tells the relay when a transaction commits outbox rows (LISTEN/NOTIFY): one
# notification per committing transaction, however many rows; the relay need not poll
OUTBOX_CHANNEL = "outbox"
OUTBOX_NOTIFY = (
    "CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS "
    f"$$ BEGIN PERFORM pg_notify('{OUTBOX_CHANNEL}', ''); RETURN NULL; END $$",
    "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox "
    "FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()",
)
OUTBOX_NOTIFY_DROP = (
    "DROP TRIGGER outbox_notify ON outbox",
    "DROP FUNCTION outbox_notify()",
)

# RPC requests applied once (infra.exactly_once): the request id, recorded with the effect,
# and the reply sent. A metadata of its own: the services' migrations that created the
# tables above with `metadata.create_all` must not create this one as well.
requests_metadata = MetaData()

rpc_requests = Table(
    "rpc_requests",
    requests_metadata,
    Column("request_id", String(64), primary_key=True),
    Column("method", String(150), nullable=False),
    Column("received_at", UtcDateTime, nullable=False),
    Column("reply", Text),
)
