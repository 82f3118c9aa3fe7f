"""The SMTP side: every message that arrives is stored before it is acknowledged."""

import asyncio
import logging

from aiosmtpd.smtp import SMTP, Envelope, Session

from tools.mail_sink.store import MailStore

logger = logging.getLogger(__name__)


class MailSinkHandler:
    """aiosmtpd handler that accepts every recipient and stores every message."""

    def __init__(self, store: MailStore) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content
        assert content is not None, "aiosmtpd sets the content before it calls handle_DATA"
        recipients = envelope.rcpt_tos
        try:
            # fsync blocks for milliseconds; keep other sessions and the web page responsive.
            message_id = await asyncio.to_thread(self.store.save, content, recipients)
        except OSError:
            logger.exception("could not store a message for %d recipient(s)", len(recipients))
            # A transient code makes the sender retry instead of dropping the message.
            return "451 Requested action aborted: could not store the message"
        logger.info("stored %s for %d recipient(s)", message_id, len(recipients))
        return "250 Message accepted"


def smtp_protocol(store: MailStore) -> SMTP:
    """One SMTP session; a fixed hostname avoids aiosmtpd's getfqdn(), which can stall on DNS."""
    return SMTP(MailSinkHandler(store), hostname="mail-sink", enable_SMTPUTF8=True)
