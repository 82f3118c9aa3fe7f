"""Sending mail over SMTP (`SMTP_HOST`, `SMTP_PORT`, `SMTP_FROM`)."""

from email.message import EmailMessage

import aiosmtplib
from temporalio.exceptions import ApplicationError

from truffle.settings import Settings

SMTP_TIMEOUT_SECONDS = 30


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        """Hands `message` to the SMTP server; returns once the server has accepted it."""
        try:
            await aiosmtplib.send(
                message,
                hostname=self.settings.smtp_host,
                port=self.settings.smtp_port,
                timeout=SMTP_TIMEOUT_SECONDS,
            )
        except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as error:
            # A 5xx refusal will not change on retry. The message names no address on purpose.
            code = getattr(error, "code", None)
            refusals = getattr(error, "recipients", [])
            if code is None and refusals:
                code = refusals[0].code
            raise ApplicationError(
                f"the mail server refused the message (SMTP {code})",
                type="EmailRefused",
                non_retryable=code is not None and code >= 500,
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise ApplicationError(
                f"the mail server answered SMTP {error.code}", type="EmailServerError"
            ) from None
        except (aiosmtplib.SMTPException, OSError) as error:
            raise ApplicationError(
                f"the mail server could not be reached ({type(error).__name__})",
                type="EmailServerUnreachable",
            ) from None
