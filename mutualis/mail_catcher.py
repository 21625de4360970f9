"""A local SMTP server that keeps every mail as a file: `mutualis mail-catcher` (`make run`
starts it) so that a newcomer sees the notifications, in var/mail/ and on the demo page
/courriels; the tests run it as a process and read what it received.

Each message is written as `<received at>-<id>.eml`, its envelope's recipients in an
`X-Envelope-To` header first (Bcc and the envelope may differ from the To header). Addresses
listed in `refuse` are answered 550, as a server that knows no such mailbox."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

from infra.settings import VAR_DIR

MAIL_DIR = VAR_DIR / "mail"


class MailDrop:
    """The aiosmtpd handler: accepts, or refuses for good, then writes the message."""

    def __init__(self, directory: Path, refuse: frozenset[str] = frozenset()):
        self.directory = directory
        self.refuse = refuse
        directory.mkdir(parents=True, exist_ok=True)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content or envelope.content
        head = f"X-Envelope-To: {', '.join(envelope.rcpt_tos)}\r\n".encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        partial = self.directory / f".{name}.part"
        partial.write_bytes(head + raw)
        os.replace(partial, self.directory / name)  # readers never see half a message
        return "250 Message accepted for delivery"


def serve(host: str, port: int, directory: Path, refuse: frozenset[str]) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(MailDrop(directory, refuse), hostname=host, port=port)
    controller.start()
    print(f"catching mail on {host}:{port} into {directory}", flush=True)
    stopped = []
    signal.signal(signal.SIGTERM, lambda *_: stopped.append(True))
    try:
        while not stopped:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
