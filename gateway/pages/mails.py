"""Demo mode only: the page /courriels lists the mails the local mail catcher received
(`mutualis mail-catcher`, started by `make run`), so that a newcomer sees what the
notifications service sends. Outside demo mode it does not exist (404)."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.utils import parsedate_to_datetime
from pathlib import Path

from contracts.errors import NotFound
from gateway.pages.entrypoint import Page, Web, page

SHOWN = 100


def caught_mails(directory: Path, limit: int = SHOWN) -> list[dict]:
    """The latest mails written by the catcher, newest first: who, what, when, the text."""
    paths = sorted(directory.glob("*.eml"), reverse=True)[:limit] if directory.is_dir() else []
    mails = []
    for path in paths:
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = message.get_body(("plain",))
        attachments = [part.get_filename() or "" for part in message.iter_attachments()]
        mails.append(
            {
                "to": message["X-Envelope-To"] or message["To"],
                "subject": message["Subject"],
                "date": parsedate_to_datetime(message["Date"]) if message["Date"] else None,
                "text": body.get_content() if body is not None else "",
                "attachments": [name for name in attachments if name],
            }
        )
    return mails


class MailPages:
    @page("GET", "/courriels")
    def caught_mails_page(self, request, web: Web):
        settings = self.config["GATEWAY"]
        if not settings.demo_mode:
            raise NotFound("No such page")
        return Page("mails.html", {"mails": caught_mails(settings.demo_mail_dir)})
