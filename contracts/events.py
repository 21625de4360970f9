"""The event envelope and the registry of every event type on the wire.

An event type is `entity.past_tense_verb`; each has a version and a typed payload.
Consumers parse with `parse_event`, which refuses unknown types and versions.
"""

from datetime import datetime
from typing import Any, ClassVar, Self
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, TypeAdapter

from contracts import clock


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Event(BaseModel):
    """Envelope common to every event; subclasses fix `type`, `version` and `payload`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1

    # required on the wire: a redelivered event must keep its id for de-duplication
    event_id: UUID
    type: str
    version: int
    occurred_at: datetime
    producer: str
    correlation_id: str | None = None
    payload: Any

    @classmethod
    def new(cls, payload: Payload, *, producer: str, correlation_id: str | None = None) -> Self:
        return cls(
            event_id=uuid4(),
            occurred_at=clock.now(),
            type=cls.TYPE,
            version=cls.VERSION,
            producer=producer,
            correlation_id=correlation_id,
            payload=payload,
        )

    @property
    def source(self) -> str:
        """The service whose event exchange carries this event."""
        return self.producer


_EVENT_CLASSES: dict[tuple[str, int], type[Event]] = {}


def register(cls: type[Event]) -> type[Event]:
    """Class decorator: make an event type parseable by consumers."""
    _EVENT_CLASSES[(cls.TYPE, cls.VERSION)] = cls
    return cls


class _Header(BaseModel):
    type: str
    version: int


_header = TypeAdapter(_Header)


class UnknownEvent(ValueError):
    """The message is not an event this code base knows (type or version)."""


def parse_event(body: Any) -> Event:
    """Validate a message body into its typed event; raises ValueError subclasses."""
    header = _header.validate_python(body)
    cls = _EVENT_CLASSES.get((header.type, header.version))
    if cls is None:
        raise UnknownEvent(f"unknown event {header.type} v{header.version}")
    return cls.model_validate(body)


def event_types() -> list[str]:
    return sorted({key[0] for key in _EVENT_CLASSES})


def event_classes() -> list[type[Event]]:
    """Every registered event class (each version), by type then version."""
    return [_EVENT_CLASSES[key] for key in sorted(_EVENT_CLASSES)]
