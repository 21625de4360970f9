"""A real SMTP server for the tests: `mutualis mail-catcher` (aiosmtpd) as a process, and
the messages it received, parsed."""

from __future__ import annotations

import socket
import subprocess
import time
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

from infra.settings import PROJECT_ROOT
from tests.support.stack import MUTUALIS, free_port


class MailCatcher:
    """`with MailCatcher(directory) as catcher:` an SMTP server on `catcher.port`; stop() and
    start() again on the same port stand for a mail server down and back."""

    def __init__(self, directory: Path, refuse: tuple[str, ...] = ()):
        self.directory = directory
        self.refuse = refuse
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> MailCatcher:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *MUTUALIS,
                "mail-catcher",
                "--port",
                str(self.port),
                "--directory",
                str(self.directory),
                "--refuse",
                ",".join(self.refuse),
            ],
            cwd=PROJECT_ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("the mail catcher did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=15)
            self.process = None

    @property
    def settings(self) -> dict[str, str]:
        """The stack's environment that sends its mail here."""
        return {"NOTIFICATIONS_SMTP_HOST": "127.0.0.1", "NOTIFICATIONS_SMTP_PORT": str(self.port)}

    def messages(self) -> list[EmailMessage]:
        """Every message received so far, in order."""
        return [
            message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in sorted(self.directory.glob("*.eml"))
        ]

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages() if address in m["X-Envelope-To"]]


def carried(message: EmailMessage) -> list[str]:
    """The decided mails (ids in the notifications' `mails` table) a message carries: the
    one of its X-Mutualis-Mail header, or every one a mail gathering several lists."""
    every = message["X-Mutualis-Mails"]
    return every.split() if every else [message["X-Mutualis-Mail"]]
