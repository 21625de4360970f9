"""Notifications: how each person wants to be told, per kind of notice, and the mails the
mail server refused. RPC schemas of the notifications service (it emits no event yet)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from contracts.fields import Input

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
