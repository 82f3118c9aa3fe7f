"""The mail directory: one `.eml` file per received message, named by its id."""

import email
import email.policy
import os
import re
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage, MIMEPart
from pathlib import Path

ENVELOPE_RECIPIENTS_HEADER = "X-Mail-Sink-Envelope-To"

_TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S%fZ"
_MESSAGE_ID = re.compile(r"\d{8}T\d{12}Z-[0-9a-f]{8}")
_TIMESTAMP_LENGTH = len("20250101T120000000000Z")


@dataclass(frozen=True)
class StoredMessage:
    id: str
    received_at: datetime
    sender: str
    recipients: list[str]
    subject: str
    text: str
    html: str | None
    headers: list[tuple[str, str]]


class MailStore:
    """Writes messages atomically and reads them back; only ids it generates are ever resolved."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        # Stored files are never rewritten, so each is parsed once however often the list is read.
        self._parsed: dict[str, StoredMessage] = {}

    def save(self, content: bytes, recipients: Sequence[str]) -> str:
        """Store `content` as received and return the new message id once it is on disk."""
        # The envelope is recorded because Bcc recipients appear in no header of the message.
        envelope_header = f"{ENVELOPE_RECIPIENTS_HEADER}: {', '.join(recipients)}\r\n"
        received_at = datetime.now(UTC)
        message_id = f"{received_at.strftime(_TIMESTAMP_FORMAT)}-{secrets.token_hex(4)}"
        self.directory.mkdir(parents=True, exist_ok=True)
        # A dot-prefixed temporary name never matches an id, so readers skip half-written files.
        descriptor, temporary_name = tempfile.mkstemp(dir=self.directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as temporary_file:
                temporary_file.write(envelope_header.encode())
                temporary_file.write(content)
                temporary_file.flush()
                os.fsync(temporary_file.fileno())
            os.replace(temporary_name, self.directory / f"{message_id}.eml")
        except BaseException:
            Path(temporary_name).unlink(missing_ok=True)
            raise
        # The rename itself is only durable once the directory entry is flushed.
        directory_descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(directory_descriptor)
        finally:
            os.close(directory_descriptor)
        return message_id

    def path_of(self, message_id: str) -> Path | None:
        if not _MESSAGE_ID.fullmatch(message_id):
            return None
        path = self.directory / f"{message_id}.eml"
        return path if path.is_file() else None

    def get(self, message_id: str) -> StoredMessage | None:
        path = self.path_of(message_id)
        return None if path is None else self._parsed_message(message_id, path)

    def messages(self) -> list[StoredMessage]:
        """Every stored message, newest first."""
        if not self.directory.is_dir():
            return []
        ids = sorted(
            (
                path.stem
                for path in self.directory.glob("*.eml")
                if _MESSAGE_ID.fullmatch(path.stem)
            ),
            reverse=True,
        )
        return [
            self._parsed_message(message_id, self.directory / f"{message_id}.eml")
            for message_id in ids
        ]

    def _parsed_message(self, message_id: str, path: Path) -> StoredMessage:
        message = self._parsed.get(message_id)
        if message is None:
            message = self._parsed[message_id] = _read(message_id, path)
        return message


def _read(message_id: str, path: Path) -> StoredMessage:
    message = email.message_from_bytes(
        path.read_bytes(), _class=EmailMessage, policy=email.policy.default
    )
    received_at = datetime.strptime(message_id[:_TIMESTAMP_LENGTH], _TIMESTAMP_FORMAT)
    recipients = str(message.get(ENVELOPE_RECIPIENTS_HEADER, ""))
    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    return StoredMessage(
        id=message_id,
        received_at=received_at.replace(tzinfo=UTC),
        sender=str(message.get("From", "")),
        recipients=[address.strip() for address in recipients.split(",") if address.strip()],
        subject=str(message.get("Subject", "")),
        text="" if text_part is None else _decoded_text(text_part),
        html=None if html_part is None else _decoded_text(html_part),
        headers=[(name, str(value)) for name, value in message.items()],
    )


def _decoded_text(part: MIMEPart) -> str:
    payload = part.get_payload(decode=True)
    assert isinstance(payload, bytes), "get_body() only returns text parts, never multiparts"
    try:
        text = payload.decode(part.get_content_charset("utf-8"), errors="replace")
    except LookupError:
        # An unknown charset must not hide the message; show its bytes as best we can.
        text = payload.decode("utf-8", errors="replace")
    # SMTP carries CRLF line ends; readers of the decoded body expect Python's "\n".
    return text.replace("\r\n", "\n")
