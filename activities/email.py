"""Sending mail over SMTP (`SMTP_HOST`, `SMTP_PORT`, `SMTP_FROM`, `SMTP_USERNAME`,
`SMTP_PASSWORD`, `SMTP_SECURITY`), each failure sorted by
whether a retry can help: a 4xx or an unreachable server may pass (`EmailDeferred`); a 5xx
refusal or a message that cannot be sent as written will not (`EmailUndeliverable`)."""

from email.message import EmailMessage

import aiosmtplib
from temporalio.exceptions import ApplicationError

from truffle.contracts import EMAIL_DEFERRED, EMAIL_UNDELIVERABLE
from truffle.settings import Settings

SMTP_TIMEOUT_SECONDS = 30


class EmailFailedError(Exception):
    """The mail server did not take the message; `permanent` when a retry cannot help. The
    message names no address on purpose."""

    def __init__(self, reason: str, smtp_code: int | None, permanent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.smtp_code = smtp_code
        self.permanent = permanent

    def as_application_error(self) -> ApplicationError:
        return ApplicationError(
            self.reason,
            type=EMAIL_UNDELIVERABLE if self.permanent else EMAIL_DEFERRED,
            non_retryable=self.permanent,
        )


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    async def send(self, message: EmailMessage) -> None:
        """Hands `message` to the SMTP server; returns once the server has accepted it."""
        security = self.settings.smtp_transport_security()
        password = self.settings.smtp_password
        try:
            await aiosmtplib.send(
                message,
                hostname=self.settings.smtp_host,
                port=self.settings.smtp_port,
                timeout=SMTP_TIMEOUT_SECONDS,
                use_tls=security == "tls",
                # True requires STARTTLS (no clear-text fallback); False never tries it.
                start_tls=security == "starttls",
                username=self.settings.smtp_username,
                password=password.get_secret_value() if password else None,
            )
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [refusal.code for refusal in error.recipients]
            code = max(codes) if codes else None
            raise _refused("the mail server refused the recipient", code) from None
        except aiosmtplib.SMTPAuthenticationError as error:
            # Our configuration, not the candidate's address: retried while someone fixes it.
            raise EmailFailedError(
                f"the mail server refused SMTP_USERNAME/SMTP_PASSWORD (SMTP {error.code})",
                smtp_code=error.code,
                permanent=False,
            ) from None
        except aiosmtplib.SMTPResponseException as error:
            raise _refused("the mail server refused the message", error.code) from None
        except aiosmtplib.SMTPException as error:
            if "STARTTLS" in str(error):
                raise EmailFailedError(
                    "the mail server does not offer STARTTLS, so nothing was sent in clear "
                    "text: enable TLS on it or set SMTP_SECURITY",
                    smtp_code=None,
                    permanent=False,
                ) from None
            raise EmailFailedError(
                f"the mail server could not be reached ({type(error).__name__})",
                smtp_code=None,
                permanent=False,
            ) from None
        except OSError as error:
            raise EmailFailedError(
                f"the mail server could not be reached ({type(error).__name__})",
                smtp_code=None,
                permanent=False,
            ) from None


def _refused(what: str, code: int | None) -> EmailFailedError:
    permanent = code is not None and 500 <= code < 600
    return EmailFailedError(f"{what} (SMTP {code})", smtp_code=code, permanent=permanent)
