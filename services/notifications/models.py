"""Tables of the notifications database: the people (learnt from the gateway's events), the
bookings and engagements they are told about, and every mail decided (the dedup table)."""

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from infra.types import UtcDateTime

metadata = MetaData()


class Base(DeclarativeBase):
    metadata = metadata


class PersonRow(Base):
    """A user as the gateway last announced them (user.created/updated/disabled)."""

    __tablename__ = "people"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    name: Mapped[str] = mapped_column(String(200))
    commune: Mapped[str] = mapped_column(String(5), index=True)
    roles: Mapped[str] = mapped_column(String(100))  # comma-separated
    disabled: Mapped[bool] = mapped_column(Boolean)
    # events may arrive out of order: the latest occurrence wins
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)


class MailRow(Base):
    """One mail to one person for one cause. The unique (recipient, cause) is what makes a
    mail sent once however often its cause is delivered or decided."""

    __tablename__ = "mails"
    __table_args__ = (
        UniqueConstraint("recipient_id", "cause", name="uq_mails_recipient_cause"),
        Index("ix_mails_due", "status", "next_attempt_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    recipient_id: Mapped[str] = mapped_column(String(36))
    address: Mapped[str] = mapped_column(String(254))
    cause: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    context: Mapped[dict] = mapped_column(JSON)  # what the templates show
    status: Mapped[str] = mapped_column(String(16))  # pending, sent, refused
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # goes in the recipient's daily digest (next_attempt_at is then the digest's hour)
    digest: Mapped[bool] = mapped_column(Boolean, default=False)


class PreferenceRow(Base):
    """How one person wants one kind of notice (none kept: immediately)."""

    __tablename__ = "preferences"

    user_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    digest_hour: Mapped[int] = mapped_column(Integer)
    changed_at: Mapped[datetime] = mapped_column(UtcDateTime)


class SubjectRow(Base):
    """A booking or an engagement, as its events last told: who its two communes are (only
    they see its conversation) and what it is called."""

    __tablename__ = "subjects"
    __table_args__ = (Index("ix_subjects_status_start", "status", "start"),)

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # booking, engagement
    title: Mapped[str] = mapped_column(String(200))
    lender_commune: Mapped[str] = mapped_column(String(5))
    borrower_commune: Mapped[str] = mapped_column(String(5))
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    # a booking's state and period, for the reminder the day before its hand-over
    status: Mapped[str | None] = mapped_column(String(16))
    start: Mapped[datetime | None] = mapped_column(UtcDateTime)
    end: Mapped[datetime | None] = mapped_column(UtcDateTime)
    requested_by: Mapped[str | None] = mapped_column(String(36))


class MessageRow(Base):
    """A message of a conversation: never edited, only added."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_subject_posted", "subject_id", "posted_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    subject_id: Mapped[str] = mapped_column(String(36))
    author_id: Mapped[str] = mapped_column(String(36))
    author_commune: Mapped[str] = mapped_column(String(5))
    author_name: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    posted_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ReadReceiptRow(Base):
    """Until when one commune has read a conversation."""

    __tablename__ = "read_receipts"

    subject_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    commune: Mapped[str] = mapped_column(String(5), primary_key=True)
    read_up_to: Mapped[datetime] = mapped_column(UtcDateTime)
