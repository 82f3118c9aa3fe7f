"""Posting a screening's status and results to Ashby (`assessment.update`)."""

import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlmodel import Session, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.screening import load_screening
from truffle import connection_health
from truffle.ashby import AshbyClient, AshbyReply, build_update
from truffle.contracts import AshbyOutcome, PostUpdateReceipt, PostUpdateRequest
from truffle.secrets import KeyRing
from truffle.tables import (
    AshbyConnection,
    ConnectionState,
    DeliveryAttempt,
    Position,
    Screening,
    utcnow,
)


class AshbyActivities:
    def __init__(
        self, engine: sa.Engine, keyring: KeyRing, ashby: AshbyClient, public_base_url: str
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.ashby = ashby
        self.public_base_url = public_base_url

    def _record(
        self,
        screening_id: uuid.UUID,
        workspace_id: uuid.UUID,
        request: PostUpdateRequest,
        outcome: AshbyOutcome,
        reply: AshbyReply | None,
    ) -> None:
        """Adds the attempt to the screening's delivery log and reports it to the connection's
        health, in one transaction."""
        now = utcnow()
        with Session(self.engine) as session:
            session.add(
                DeliveryAttempt(
                    screening_id=screening_id,
                    workspace_id=workspace_id,
                    update_kind=request.kind,
                    attempt=activity.info().attempt,
                    attempted_at=now,
                    outcome=outcome,
                    http_status=reply.http_status if reply else None,
                    error_code=reply.error_code if reply else None,
                    request_id=reply.request_id if reply else None,
                )
            )
            if outcome == AshbyOutcome.ok or outcome.holds:
                session.exec(
                    sa.update(Screening)
                    .where(Screening.id == screening_id)  # type: ignore[arg-type]
                    .values(delivery_held=outcome.holds)
                )
            if outcome == AshbyOutcome.ok:
                connection_health.record_success(session, workspace_id, now)
            elif outcome != AshbyOutcome.held:
                connection_health.record_failure(
                    session,
                    workspace_id,
                    outcome,
                    now,
                    http_status=reply.http_status if reply else None,
                    code=reply.error_code if reply else None,
                    request_id=reply.request_id if reply else None,
                )
            session.commit()

    @activity.defn(name="post_assessment_update")
    async def post_assessment_update(self, request: PostUpdateRequest) -> PostUpdateReceipt:
        with Session(self.engine) as session:
            screening = load_screening(session, request.screening_id)
            screening_id, workspace_id = screening.id, screening.workspace_id
            position = session.get(Position, screening.position_id)
            assert position is not None
            connection = session.exec(
                select(AshbyConnection).where(
                    AshbyConnection.workspace_id == screening.workspace_id
                )
            ).first()
            if (
                connection is None
                or connection.state != ConnectionState.live
                or connection.encrypted_ashby_key is None
            ):
                self._record(screening_id, workspace_id, request, AshbyOutcome.held, None)
                raise ApplicationError(
                    "the Ashby connection is not live; the update is held until it is",
                    type=AshbyOutcome.held.error_type,
                    non_retryable=True,
                )
            # Decrypted here and only here: the key never leaves this activity.
            ashby_key = self.keyring.unseal(connection.encrypted_ashby_key, screening.workspace_id)
            # Strictly increasing per assessment, whatever the clocks or retries do.
            timestamp_ms = max(request.occurred_at_ms, screening.last_update_timestamp_ms + 1)
            screening.last_update_timestamp_ms = timestamp_ms
            body = build_update(
                screening, position, request.kind, timestamp_ms, self.public_base_url
            )
            session.add(screening)
            session.commit()

        reply = await self.ashby.call("assessment.update", ashby_key, body)
        self._record(screening_id, workspace_id, request, reply.outcome, reply)
        where = f"HTTP {reply.http_status}, request id {reply.request_id or 'none'}"
        if reply.outcome == AshbyOutcome.ok:
            return PostUpdateReceipt(timestamp_ms=timestamp_ms, request_id=reply.request_id)
        if reply.outcome.holds:
            raise ApplicationError(
                f"Ashby rejected the Ashby API key ({where}); held until reconnect",
                type=reply.outcome.error_type,
                non_retryable=True,
            )
        if reply.outcome == AshbyOutcome.rejected:
            raise ApplicationError(
                f"Ashby rejected the update: {reply.error_code} ({where})",
                type=reply.outcome.error_type,
                non_retryable=True,
            )
        if reply.outcome == AshbyOutcome.rate_limited:
            # Without Retry-After the retry policy's exponential backoff applies.
            delay = (
                timedelta(seconds=reply.retry_after_seconds)
                if reply.retry_after_seconds is not None
                else None
            )
            raise ApplicationError(
                f"Ashby is rate limiting ({where})",
                type=reply.outcome.error_type,
                next_retry_delay=delay,
            )
        raise ApplicationError(
            f"Ashby is unavailable: {reply.outcome} ({where})", type=reply.outcome.error_type
        )
