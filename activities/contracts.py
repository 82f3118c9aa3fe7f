"""What the screening workflow and its activities pass each other: ids and outcomes only.

Nothing personal (names, emails, answers) and no secret (keys, link tokens) ever travels here,
so none of it reaches workflow history; activities read what they need from the database.
"""

from dataclasses import dataclass
from enum import StrEnum


class EmailKind(StrEnum):
    invite = "invite"
    reminder_after_invite = "reminder_after_invite"
    reminder_before_deadline = "reminder_before_deadline"


class UpdateKind(StrEnum):
    started = "started"
    result = "result"
    expired = "expired"


class AshbyErrorType(StrEnum):
    """`ApplicationError.type`s that `post_assessment_update` raises; the workflow acts on them."""

    connection_not_live = "AshbyConnectionNotLive"  # hold until the connection is live again
    key_rejected = "AshbyKeyRejected"  # 401/403: hold until reconnect and Ashby's first call
    update_rejected = "AshbyUpdateRejected"  # success:false on our payload: permanent
    rate_limited = "AshbyRateLimited"  # 429: retried after Retry-After
    unavailable = "AshbyUnavailable"  # 5xx or timeout: retried with backoff


HOLDING_ERROR_TYPES = (AshbyErrorType.connection_not_live, AshbyErrorType.key_rejected)


@dataclass(frozen=True)
class ScreeningRef:
    screening_id: str


@dataclass(frozen=True)
class EmailRequest:
    screening_id: str
    kind: EmailKind


@dataclass(frozen=True)
class EmailReceipt:
    sent: bool  # False when an earlier attempt had already handed it to the mail server


@dataclass(frozen=True)
class PostUpdateRequest:
    screening_id: str
    kind: UpdateKind
    occurred_at_ms: int


@dataclass(frozen=True)
class PostUpdateReceipt:
    timestamp_ms: int
    request_id: str | None


@dataclass(frozen=True)
class ScoreSummary:
    match_score: int
    tier: str


@dataclass(frozen=True)
class ClosingResult:
    """How the database settled a close (cancel or expiry) that may race the candidate."""

    status: str  # the screening's status after the close: cancelled, expired or completed
