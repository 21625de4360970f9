"""Notifications: how each person wants to be told, per kind of notice, and the mails the
mail server refused; the conversation of each booking and engagement. RPC schemas of the
notifications service and its event."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from contracts.events import Event, Payload, register
from contracts.fields import Input, Text

Mode = Literal["immediately", "daily", "never"]


class Preference(Input):
    kind: str = Field(min_length=1, max_length=40, description="a kind of notice (see GET)")
    mode: Mode = Field(
        description="immediately; daily: in one digest a day at `digest_hour` (Paris time); "
        "never (refused for a security kind: 422)"
    )
    digest_hour: int = Field(default=7, ge=0, le=23, description="Paris hour of the digest")


class PreferencesChange(Input):
    preferences: list[Preference] = Field(min_length=1, max_length=50)


class PreferenceView(BaseModel):
    kind: str
    label: str  # French, as the page shows it
    mode: Mode
    digest_hour: int
    security: bool  # always sent, whatever the mode chosen


class PreferenceList(BaseModel):
    items: list[PreferenceView]


class RefusedMail(BaseModel):
    id: str
    kind: str
    cause: str
    address: str
    status: str
    attempts: int
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class RefusedMailList(BaseModel):
    items: list[RefusedMail]


# -- conversations: the two communes of a booking or an engagement write to each other ----

MAX_MESSAGE = 5000


class MessageDraft(Input):
    text: Text = Field(min_length=1, max_length=MAX_MESSAGE, description="no control characters")


class MessageView(BaseModel):
    id: str
    author_commune: str
    author_name: str
    text: str
    posted_at: datetime


class ConversationView(BaseModel):
    subject_id: str  # the booking's or the engagement's id
    subject_kind: Literal["booking", "engagement"]
    title: str
    lender_commune: str
    borrower_commune: str
    messages: list[MessageView]  # oldest first; never edited, only added
    # read receipts: until when each of the two communes has read (None: never)
    read_up_to: dict[str, datetime | None]


class MessageSnapshot(Payload):
    message_id: str
    subject_id: str
    subject_kind: str
    title: str
    lender_commune: str
    borrower_commune: str
    author_commune: str
    written_by: str  # the author's name
    text: str
    posted_at: datetime


@register
class MessagePosted(Event):
    """A message added to a booking's or an engagement's conversation."""

    TYPE = "message.posted"
    payload: MessageSnapshot


class HandOverReminder(Payload):
    """An approved loan handed over tomorrow (Paris): the notifications service's own
    reminder, one per booking and first day (a loan moved to another day is reminded again)."""

    reminder_id: str  # <booking id>:<first day>
    booking_id: str
    listing_title: str
    lender_commune: str
    borrower_commune: str
    start: datetime
    end: datetime
    requested_by: str | None = None
