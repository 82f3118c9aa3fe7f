"""Sending mail over SMTP (`SMTP_HOST`, `SMTP_PORT`, `SMTP_FROM`, `SMTP_USERNAME`,
`SMTP_PASSWORD`, `SMTP_SECURITY`), each failure sorted by
whether a retry can help: a 4xx or an unreachable server may pass (`EmailDeferred`); a 5xx
refusal or a message that cannot be sent as written will not (`EmailUndeliverable`).

A whole conversation with the server is capped at `SEND_TIMEOUT_SECONDS`, below the activity's
start-to-close timeout, so an attempt never outlives its slot while a retry sends again. A
connection that breaks (or stalls past the cap) after the message was handed over leaves it
unknown whether the server took it: that is `EmailUnconfirmedError`, never a plain failure.
"""

import asyncio
import contextlib
import email.policy
import functools
import socket
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage
from typing import Any

import aiosmtplib
from temporalio.exceptions import ApplicationError

from truffle.contracts import EMAIL_DEFERRED, EMAIL_UNDELIVERABLE
from truffle.runtime.tls import mail_tls
from truffle.settings import Settings

# The whole conversation: connect, TLS, login, the message and QUIT.
SEND_TIMEOUT_SECONDS = 20.0


class _HeaderClasses(HeaderRegistry):
    """Python's registry, with each header's class made once: the standard one makes a new
    class for every header set, about half of the CPU of writing a message."""

    @functools.cache  # noqa: B019 (one registry per worker process, kept for its life)
    def __getitem__(self, name: str) -> type[BaseHeader]:
        return super().__getitem__(name)


# The standard policy (`email.policy.default`) with that registry.
MESSAGE_POLICY = email.policy.default.clone(header_factory=_HeaderClasses())


def new_message() -> EmailMessage:
    return EmailMessage(policy=MESSAGE_POLICY)


class EmailUnconfirmedError(Exception):
    """The message was handed to the server, which never said whether it took it."""


class _SMTP(aiosmtplib.SMTP):
    """Notes when the message itself starts to go out (DATA): from then on, a broken or
    stalled connection may have delivered it."""

    handed_over = False

    async def data(self, message: str | bytes, /, **options: Any) -> aiosmtplib.SMTPResponse:
        self.handed_over = True
        return await super().data(message, **options)


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
    def __init__(self, settings: Settings, send_timeout: float = SEND_TIMEOUT_SECONDS) -> None:
        self.settings = settings
        self.send_timeout = send_timeout
        self._local_hostname: str | None = None

    async def local_hostname(self) -> str:
        """The name this host gives in EHLO, looked up once per process: the lookup may ask
        DNS, and would otherwise be made for every email."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(self, message: EmailMessage) -> None:
        """Hands `message` to the SMTP server; returns once the server has accepted it. Raises
        `EmailFailedError` when it certainly did not, `EmailUnconfirmedError` when it may have."""
        security = self.settings.smtp_transport_security()
        password = self.settings.smtp_password
        smtp = _SMTP(
            hostname=self.settings.smtp_host,
            port=self.settings.smtp_port,
            timeout=self.send_timeout,
            use_tls=security == "tls",
            # True requires STARTTLS (no clear-text fallback); False never tries it.
            start_tls=security == "starttls",
            tls_context=mail_tls() if security in ("tls", "starttls") else None,
            username=self.settings.smtp_username,
            password=password.get_secret_value() if password else None,
        )
        try:
            async with asyncio.timeout(self.send_timeout):
                # The lookup is part of the conversation's time: a slow resolver is a timeout.
                await smtp.connect(local_hostname=await self.local_hostname())
                await smtp.send_message(message)
        except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused) as error:
            smtp.close()
            raise _refusal(error) from None
        except (TimeoutError, OSError) as error:  # the SMTP timeouts and disconnects among them
            smtp.close()
            if smtp.handed_over:
                raise EmailUnconfirmedError(type(error).__name__) from None
            raise EmailFailedError(
                f"the mail server did not answer within {self.send_timeout:.0f} s"
                if isinstance(error, TimeoutError)
                else f"the mail server could not be reached ({type(error).__name__})",
                smtp_code=None,
                permanent=False,
            ) from None
        except aiosmtplib.SMTPException as error:
            smtp.close()
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
        # Accepted: a QUIT the server does not answer changes nothing.
        with contextlib.suppress(TimeoutError, OSError, aiosmtplib.SMTPException):
            async with asyncio.timeout(1):
                await smtp.quit()
        smtp.close()


def _refusal(
    error: aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused,
) -> EmailFailedError:
    """What the server's refusal means for the message."""
    if isinstance(error, aiosmtplib.SMTPRecipientsRefused):
        codes = [refusal.code for refusal in error.recipients]
        return _refused("the mail server refused the recipient", max(codes) if codes else None)
    if isinstance(error, aiosmtplib.SMTPAuthenticationError):
        # Our configuration, not the candidate's address: retried while someone fixes it.
        return EmailFailedError(
            f"the mail server refused SMTP_USERNAME/SMTP_PASSWORD (SMTP {error.code})",
            smtp_code=error.code,
            permanent=False,
        )
    return _refused("the mail server refused the message", error.code)


def _refused(what: str, code: int | None) -> EmailFailedError:
    permanent = code is not None and 500 <= code < 600
    return EmailFailedError(f"{what} (SMTP {code})", smtp_code=code, permanent=permanent)
