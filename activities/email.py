"""Sending mail over SMTP (`SMTP_HOST`, `SMTP_PORT`, `SMTP_FROM`)."""

from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib
from temporalio import activity
from temporalio.exceptions import ApplicationError

from truffle.settings import Settings

SMTP_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class EmailToSend:
    """One message. `message_id` is stable across retries so receivers can spot a repeat."""

    message_id: str
    to: str
    subject: str
    text: str
    html: str | None = None


class EmailActivities:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def build_message(self, email: EmailToSend) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.settings.smtp_from
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Date"] = formatdate(localtime=False, usegmt=True)
        message["Message-ID"] = email.message_id
        message.set_content(email.text)
        if email.html is not None:
            message.add_alternative(email.html, subtype="html")
        return message

    @activity.defn(name="send_email")
    async def send_email(self, email: EmailToSend) -> None:
        try:
            await aiosmtplib.send(
                self.build_message(email),
                hostname=self.settings.smtp_host,
                port=self.settings.smtp_port,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as error:
            # A 5xx refusal will not change on retry; the message names no address on purpose.
            code = getattr(error, "code", None)
            raise ApplicationError(
                f"the mail server refused the message (SMTP {code})",
                type="EmailRefused",
                non_retryable=code is not None and code >= 500,
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise ApplicationError(
                f"the mail server answered SMTP {error.code}",
                type="EmailServerError",
                non_retryable=False,
            ) from None
