"""The mail server, through the standard library's smtplib: a connection that rounds of
mails share while it answers, STARTTLS and authentication as the settings say, and each
failure sorted into "retry later" (the server is down or says 4xx) or "refused for good"
(5xx for an address)."""

from __future__ import annotations

import smtplib
import ssl

from services.notifications.mails import Outgoing


class ServerUnavailable(Exception):
    """No mail can go now (cannot connect, 4xx, cut off): every pending mail waits."""


class Refused(Exception):
    """The server refuses this mail for good (550 no such user, …): sending it again would
    be refused again."""


class Mailer:
    def __init__(self, settings):
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None
        self.sent = 0  # messages the server took on this connection

    def open(self) -> Mailer:
        """Connected, greeted (and STARTTLS, logged in) as the settings say."""
        s = self.settings
        try:
            smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout_seconds)
            smtp.ehlo()
            if s.smtp_starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if s.smtp_username:
                smtp.login(s.smtp_username, s.smtp_password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise ServerUnavailable(f"authentication refused: {exc.smtp_code}") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ServerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        self._smtp = smtp
        return self

    def answering(self) -> bool:
        """Whether the connection still takes commands (NOOP): a server may have closed it."""
        try:
            return self._smtp is not None and self._smtp.noop()[0] == 250
        except (OSError, smtplib.SMTPException):
            return False

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def __enter__(self) -> Mailer:
        return self.open()

    def __exit__(self, *exc_info) -> None:
        self.close()

    def send(self, mail: Outgoing) -> None:
        international = not (mail.sender.isascii() and mail.recipient.isascii())
        try:
            refused = self._smtp.sendmail(
                mail.sender,
                [mail.recipient],
                mail.data,
                mail_options=["SMTPUTF8"] if international else [],
            )
        except smtplib.SMTPRecipientsRefused as exc:
            raise _sorted(*next(iter(exc.recipients.values()))) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _sorted(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise ServerUnavailable(f"{type(exc).__name__}: {exc}") from exc
        if refused:  # one recipient per message: only reached with several
            raise _sorted(*next(iter(refused.values())))
        self.sent += 1


def _sorted(code: int, reply: bytes | str) -> Exception:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else str(reply)
    if 500 <= code < 600:
        return Refused(f"{code} {text}")
    return ServerUnavailable(f"{code} {text}")
