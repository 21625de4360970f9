"""Input field types shared by every service's RPC schemas."""

import re
import typing
import unicodedata
import uuid
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    field_validator,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypeAliasType


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


_ISO_START = re.compile(r"\s*\d{4}-")


def iso_written(value: Any) -> Any:
    """Dates and instants are written in ISO 8601 (2026-03-05, 2026-03-05T08:00:00+01:00):
    pydantic would read a number, or a text of digits, as seconds since 1970 (`to=0`)."""
    if isinstance(value, bool | int | float) or (
        isinstance(value, str) and not _ISO_START.match(value)
    ):
        raise PydanticCustomError("iso_date", "Input should be an ISO 8601 date (YYYY-MM-DD)")
    return value


def _date_or_instant(value: Any, handler) -> date:
    # one error for the field, not one per member of the union
    iso_written(value)
    try:
        parsed = handler(value)
    except ValidationError:
        raise PydanticCustomError(
            "date_or_datetime",
            "Input should be a date (YYYY-MM-DD) or a datetime with offset",
        ) from None
    return within_years(parsed)


# text that shows nothing: Hangul fillers, the Braille blank, the Khmer inherent vowels, the
# combining grapheme joiner (format characters, Cf, and spaces are found by category)
INVISIBLE = frozenset("\u115f\u1160\u3164\uffa0\u2800\u17b4\u17b5\u034f")
# explicit embeddings, overrides and isolates: they reorder what is shown around them
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_character(text: str) -> str | None:
    """The first control character of `text` (NUL, C0 and C1 but tab and line breaks), or
    None: what a database may refuse and a page or a CSV export would garble."""
    return next((c for c in text if unicodedata.category(c) == "Cc" and c not in "\t\n\r"), None)


def nul_refused() -> PydanticCustomError:
    # PostgreSQL cannot store NUL characters in text
    return PydanticCustomError("string_nul", "NUL characters are not allowed")


def _visible(c: str) -> bool:
    return c not in INVISIBLE and unicodedata.category(c) not in ("Cc", "Cf", "Zs", "Zl", "Zp")


def _readable(value: str) -> str:
    value = unicodedata.normalize("NFC", value)
    if "\x00" in value:
        raise nul_refused()
    bad = control_character(value)
    if bad is not None:
        raise PydanticCustomError(
            "string_control",
            "Control characters are not allowed ({code})",
            {"code": f"U+{ord(bad):04X}"},
        )
    if any(c in BIDI_CONTROLS for c in value):
        raise PydanticCustomError(
            "string_bidi", "Bidirectional override and isolate characters are not allowed"
        )
    if value and not any(_visible(c) for c in value):
        raise PydanticCustomError("string_invisible", "The text shows no visible character")
    return value


# titles, names, reasons, descriptions, rules and bios people read: NFC, something visible,
# nothing that reorders or hides what is shown (tabs and line breaks are text too)
Text = Annotated[str, AfterValidator(_readable)]


# which side of a loan or an engagement a list is read from (one named enum in the API)
AsParty = TypeAliasType("AsParty", Literal["borrower", "lender"])

# a commune's INSEE code: five characters, Corsica's 2A/2B included
INSEE = r"^(\d[0-9AB]\d{3})$"

Day = Annotated[date, BeforeValidator(iso_written), AfterValidator(within_years)]
Instant = Annotated[AwareDatetime, BeforeValidator(iso_written), AfterValidator(within_years)]
# a date is a day as Paris lives it: it starts at 00:00 Europe/Paris (the day before at 23:00
# UTC in winter, 22:00 in summer), whatever the caller's own time zone
PARIS_DAY = (
    "A date (YYYY-MM-DD) is a day in Europe/Paris: it begins at 00:00 Paris time (23:00 UTC "
    "the day before in winter, 22:00 in summer); or an ISO 8601 datetime with its offset"
)
DateOrInstant = Annotated[
    AwareDatetime | date, WrapValidator(_date_or_instant), Field(description=PARIS_DAY)
]


M = TypeVar("M", bound=BaseModel)


def amended(current: M, changes: BaseModel) -> M:
    """`current` after an edit that sent only what changes, validated again as a whole (so a
    rule across fields, e.g. min ≤ max duration, holds after the edit too)."""
    from contracts.errors import validated

    merged = current.model_dump() | changes.model_dump(exclude_unset=True)
    return validated(type(current), merged)


def _takes_a_number(annotation: Any) -> bool:
    """Whether a field typed `annotation` holds a number (int, float, Decimal, or one of them
    or None) and no boolean."""
    kinds = typing.get_args(annotation) if typing.get_args(annotation) else (annotation,)
    numbers = {int, float, Decimal}
    return bool(numbers.intersection(kinds)) and bool not in kinds


class Input(BaseModel):
    """Base of every input: unknown fields refused, text trimmed, no NUL characters, and no
    true or false where a number goes (pydantic's lax mode reads `"quantity": true` as 1)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _number_fields: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        # read once per class, not at every validation
        cls._number_fields = frozenset(
            name for name, field in cls.model_fields.items() if _takes_a_number(field.annotation)
        )

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_number(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, bool) and info.field_name in cls._number_fields:
            raise PydanticCustomError("int_type", "a number, not true or false")
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise nul_refused()
        return value


class Reason(Input):
    """Why, when saying why is optional (a cancellation)."""

    reason: Text = Field(default="", max_length=1000)


class RequiredReason(Input):
    """Why, when it must be said (a rejection)."""

    reason: Text = Field(min_length=3, max_length=1000)
