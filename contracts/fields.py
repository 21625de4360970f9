"""Input field types shared by every service's RPC schemas."""

import uuid
from datetime import date
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError


def is_uuid(value: Any) -> bool:
    """Whether an id from a URL can be one of ours (UUIDs): anything else, a NUL byte
    included (PostgreSQL refuses those), is no object at all, answered 404 before SQL."""
    try:
        uuid.UUID(value)
        return True
    except (ValueError, TypeError, AttributeError):
        return False


# dates outside these years are typos, and would overflow the arithmetic on periods
EARLIEST_YEAR, LATEST_YEAR = 1900, 2999


def within_years(value: date) -> date:
    if not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
        raise PydanticCustomError(
            "date_out_of_range",
            "The year should be between {earliest} and {latest}",
            {"earliest": EARLIEST_YEAR, "latest": LATEST_YEAR},
        )
    return value


def _date_or_instant(value: Any, handler) -> date:
    # one error for the field, not one per member of the union
    try:
        parsed = handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "date_or_datetime",
            "Input should be a date (YYYY-MM-DD) or a datetime with offset",
        ) from None
    return within_years(parsed)


# a commune's INSEE code: five characters, Corsica's 2A/2B included
INSEE = r"^(\d[0-9AB]\d{3})$"

Day = Annotated[date, AfterValidator(within_years)]
Instant = Annotated[AwareDatetime, AfterValidator(within_years)]
DateOrInstant = Annotated[AwareDatetime | date, WrapValidator(_date_or_instant)]


M = TypeVar("M", bound=BaseModel)


def amended(current: M, changes: BaseModel) -> M:
    """`current` after an edit that sent only what changes, validated again as a whole (so a
    rule across fields, e.g. min ≤ max duration, holds after the edit too)."""
    from contracts.errors import validated

    merged = current.model_dump() | changes.model_dump(exclude_unset=True)
    return validated(type(current), merged)


class Input(BaseModel):
    """Base of every input: unknown fields refused, text trimmed, no NUL characters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL characters in text
        if isinstance(value, str) and "\x00" in value:
            raise PydanticCustomError("string_nul", "NUL characters are not allowed")
        return value


class Reason(Input):
    """Why, when saying why is optional (a cancellation)."""

    reason: str = Field(default="", max_length=1000)


class RequiredReason(Input):
    """Why, when it must be said (a rejection)."""

    reason: str = Field(min_length=3, max_length=1000)
