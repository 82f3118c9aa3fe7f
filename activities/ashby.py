"""Posting a screening's status and results to Ashby (`assessment.update`).

An update is composed once and stored (`ashby_updates`): every attempt posts those very bytes,
so a re-post after a crash carries the same timestamp and body and Ashby sees one update. An
update recorded as delivered is never posted again.
"""

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from limits import parse
from sqlmodel import Session, col, select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.screening import load_screening, screening_not_found
from truffle.ashby import connection_health
from truffle.ashby.client import (
    AshbyClient,
    AshbyReply,
    UpdateSubject,
    build_update,
    needs_position,
)
from truffle.contracts import (
    ASHBY_THROTTLED,
    GIVEN_UP_OUTCOMES,
    AshbyOutcome,
    CloseReason,
    DeliveryGivenUp,
    PostUpdateReceipt,
    PostUpdateRequest,
    RedeliveryPlan,
    ScreeningRef,
    ScreeningStatus,
)
from truffle.position.positions import version_of
from truffle.runtime import metrics
from truffle.runtime.moving_window import MovingWindow
from truffle.screening import report_links
from truffle.screening.redelivery import reopen_for_redelivery
from truffle.screening.screenings import mark_settled
from truffle.security.secrets import DecryptionError, KeyRing
from truffle.storage.tables import (
    AshbyConnection,
    AshbyUpdate,
    ConnectionState,
    DeliveryAttempt,
    Screening,
    table_of,
    utcnow,
)

SCREENINGS, CONNECTIONS = table_of(Screening), table_of(AshbyConnection)
UPDATES, ATTEMPTS = table_of(AshbyUpdate), table_of(DeliveryAttempt)

# A post's statements, built once: each post binds only its values, so SQLAlchemy neither
# rebuilds them nor works out their cache keys again (half the CPU of a post otherwise).
# What a post reads: the screening's columns an update is built from, its workspace's
# connection and the update stored by an earlier attempt, if any.
UPDATE_SOURCES = (
    sa.select(
        SCREENINGS.c.workspace_id,
        SCREENINGS.c.position_id,
        SCREENINGS.c.position_version,
        SCREENINGS.c.last_update_timestamp_ms,
        SCREENINGS.c.deadline_at,
        SCREENINGS.c.started_at,
        SCREENINGS.c.close_reason,
        SCREENINGS.c.result,
        CONNECTIONS.c.encrypted_ashby_key,
        CONNECTIONS.c.state,
        UPDATES.c.id.label("update_id"),
        UPDATES.c.timestamp_ms,
        UPDATES.c.body,
        UPDATES.c.delivered_at,
    )
    .select_from(SCREENINGS)
    .outerjoin(CONNECTIONS, CONNECTIONS.c.workspace_id == SCREENINGS.c.workspace_id)
    .outerjoin(
        UPDATES,
        sa.and_(UPDATES.c.screening_id == SCREENINGS.c.id, UPDATES.c.kind == sa.bindparam("kind")),
    )
    .where(SCREENINGS.c.id == sa.bindparam("screening_id"))
)
STORE_UPDATE = sa.insert(UPDATES)
LAST_TIMESTAMP = (
    sa.update(SCREENINGS)
    .where(SCREENINGS.c.id == sa.bindparam("screening_id"))
    .values(last_update_timestamp_ms=sa.bindparam("timestamp_ms"))
)
LOG_ATTEMPT = sa.insert(ATTEMPTS)
HELD = (
    sa.update(SCREENINGS)
    .where(SCREENINGS.c.id == sa.bindparam("screening_id"))
    .where(SCREENINGS.c.delivery_held != sa.bindparam("held"))  # only when it changes
    .values(delivery_held=sa.bindparam("held"))
)
DELIVERED, GIVEN_UP = (
    sa.update(UPDATES)
    .where(UPDATES.c.id == sa.bindparam("update_id"))
    .values({column: sa.bindparam("at")})
    for column in ("delivered_at", "given_up_at")
)

# When Ashby throttles all of Truffle's traffic without saying for how long.
PARTNER_PAUSE_SECONDS = 60.0
# A wait shorter than this happens inside the activity; a longer one is a retry Temporal
# schedules, so the activity gives its slot back.
WAIT_IN_PLACE_SECONDS = 2.0


class AshbyThrottle:
    """Outbound pacing, per worker process: at most `rate` posts per workspace (so one busy
    customer cannot use up what Ashby allows Truffle), and after Ashby throttles the whole
    partner (`X-RateLimit-Scope: integration-partner`) no post at all until its Retry-After
    has passed."""

    def __init__(self, rate: str) -> None:
        self._limit = parse(rate)
        self._window = MovingWindow()
        self._partner_paused_until = 0.0

    def wait_before_posting(self, workspace_id: uuid.UUID) -> tuple[float, str] | None:
        """None to post now, else how many seconds to wait and why (`partner`, `workspace`)."""
        paused = self._partner_paused_until - time.monotonic()
        if paused > 0:
            return paused, "partner"
        wait = self._window.hit(self._limit, str(workspace_id))
        return None if wait is None else (max(0.01, wait), "workspace")

    def pause_partner(self, seconds: float | None) -> None:
        until = time.monotonic() + (PARTNER_PAUSE_SECONDS if seconds is None else seconds)
        self._partner_paused_until = max(self._partner_paused_until, until)


class UpdateUnbuildableError(Exception):
    """The update cannot be built from what the database holds (named by the error's type
    only: its message may quote a candidate's data)."""


@dataclass(frozen=True)
class _Prepared:
    workspace_id: uuid.UUID
    update_id: uuid.UUID
    timestamp_ms: int
    body: dict[str, Any]
    ashby_key: str | None  # None: the connection is not live, so nothing is sent
    delivered: bool
    unreadable: bool  # the stored Ashby key cannot be decrypted with TRUFFLE_SECRET_KEYS
    report_link_id: uuid.UUID | None = None  # the report link the body carries


class AshbyActivities:
    def __init__(
        self,
        engine: sa.Engine,
        keyring: KeyRing,
        ashby: AshbyClient,
        public_base_url: str,
        throttle: AshbyThrottle | None = None,
        report_link_lifetime: timedelta = timedelta(days=180),
    ) -> None:
        self.engine = engine
        self.keyring = keyring
        self.ashby = ashby
        self.public_base_url = public_base_url
        self.throttle = throttle or AshbyThrottle("50/second")
        self.report_link_lifetime = report_link_lifetime

    def _record(
        self,
        screening_id: uuid.UUID,
        workspace_id: uuid.UUID,
        kind: str,
        outcome: AshbyOutcome,
        reply: AshbyReply | None,
        update_id: uuid.UUID | None = None,
        report_link_id: uuid.UUID | None = None,
        settles: bool = False,
    ) -> None:
        """Adds the attempt to the screening's delivery log, settles the stored update when it
        was delivered or given up (and the screening, when this update was the last thing it
        owed Ashby), and reports the outcome to the connection's health, in one
        transaction."""
        closed: ScreeningStatus | None = None
        now = utcnow()
        status = str(reply.http_status) if reply and reply.http_status else "none"
        metrics.ASHBY_DELIVERIES.labels(kind, str(outcome), status).inc()
        with Session(self.engine) as session:
            session.execute(
                LOG_ATTEMPT,
                {
                    "id": uuid.uuid4(),
                    "screening_id": screening_id,
                    "workspace_id": workspace_id,
                    "update_kind": kind,
                    "attempt": activity.info().attempt,
                    "attempted_at": now,
                    "outcome": outcome,
                    "http_status": reply.http_status if reply else None,
                    "error_code": reply.error_code if reply else None,
                    "request_id": reply.request_id if reply else None,
                },
            )
            if outcome == AshbyOutcome.ok or outcome.holds:
                session.execute(HELD, {"screening_id": screening_id, "held": outcome.holds})
            elif outcome in GIVEN_UP_OUTCOMES:
                session.execute(
                    sa.update(SCREENINGS)
                    .where(SCREENINGS.c.id == screening_id)
                    .values(delivery_failed=True)
                )
            if update_id is not None and (
                outcome == AshbyOutcome.ok or outcome in GIVEN_UP_OUTCOMES
            ):
                settled = DELIVERED if outcome == AshbyOutcome.ok else GIVEN_UP
                session.execute(settled, {"update_id": update_id, "at": now})
            if outcome == AshbyOutcome.ok:
                connection_health.record_success(session, workspace_id, now)
                if report_link_id is not None:
                    report_links.mark_announced(session, report_link_id)
                if settles:
                    closed = mark_settled(session, screening_id)
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
        if closed is not None:
            metrics.SCREENINGS_CLOSED.labels(closed).inc()

    def _prepare(self, request: PostUpdateRequest) -> _Prepared:
        """The stored update for this request (composed now if it is the first attempt) and the
        Ashby key to send it with: the screening's columns an update needs, its connection and
        the stored update read in one statement, without loading rows as objects."""
        screening_id = uuid.UUID(request.screening_id)
        with Session(self.engine) as session:
            row = session.execute(
                UPDATE_SOURCES, {"screening_id": screening_id, "kind": request.kind}
            ).first()
            if row is None:
                raise screening_not_found(request.screening_id)
            workspace_id: uuid.UUID = row.workspace_id
            sealed_key = row.encrypted_ashby_key if row.state == ConnectionState.live else None
            live = sealed_key is not None
            update_id: uuid.UUID | None = row.update_id
            timestamp_ms: int = row.timestamp_ms or 0
            body: dict[str, Any] = dict(row.body) if update_id is not None else {}
            if update_id is None and live:
                position = (
                    version_of(session, row.position_id, row.position_version)
                    if needs_position(request.kind)
                    else None
                )
                # Strictly increasing per assessment, whatever the clocks or retries do.
                timestamp_ms = max(request.occurred_at_ms, row.last_update_timestamp_ms + 1)
                subject = UpdateSubject(
                    id=screening_id,
                    deadline_at=row.deadline_at,
                    started_at=row.started_at,
                    close_reason=CloseReason(row.close_reason) if row.close_reason else None,
                    result=row.result,
                )
                try:
                    body = build_update(
                        subject,
                        position,
                        request.kind,
                        timestamp_ms,
                        self.public_base_url,
                        request.reason,
                    )
                except Exception as error:  # a bug: no retry would build it
                    raise UpdateUnbuildableError(type(error).__name__) from None
                update_id = uuid.uuid4()
                session.execute(
                    STORE_UPDATE,
                    {
                        "id": update_id,
                        "screening_id": screening_id,
                        "kind": request.kind,
                        "timestamp_ms": timestamp_ms,
                        "body": body,
                        "created_at": utcnow(),
                    },
                )
                session.execute(
                    LAST_TIMESTAMP, {"screening_id": screening_id, "timestamp_ms": timestamp_ms}
                )
                body = dict(body)
            # Decrypted here and only here: the key never leaves this activity.
            try:
                ashby_key = self.keyring.unseal(sealed_key, workspace_id) if sealed_key else None
                unreadable = False
            except DecryptionError:
                ashby_key, unreadable = None, True
            link_id = None
            if live and body.get("assessment_profile_url", {}).get("value") == (
                report_links.PLACEHOLDER
            ):
                # The screening's live link (issued now if it has none): the same address on
                # every attempt, never stored with the body.
                link, url = report_links.current_url(
                    session,
                    self.keyring,
                    screening_id,
                    self.public_base_url,
                    self.report_link_lifetime,
                )
                link_id = link.id
                body["assessment_profile_url"] = {**body["assessment_profile_url"], "value": url}
            # The stored body and a newly issued link in one commit, before anything is sent.
            session.commit()
            return _Prepared(
                workspace_id=workspace_id,
                update_id=update_id or uuid.uuid4(),
                timestamp_ms=timestamp_ms,
                body=body,
                ashby_key=ashby_key,
                delivered=row.delivered_at is not None,
                unreadable=unreadable,
                report_link_id=link_id,
            )

    @activity.defn(name="post_assessment_update")
    async def post_assessment_update(self, request: PostUpdateRequest) -> PostUpdateReceipt:
        try:
            prepared = await asyncio.to_thread(self._prepare, request)
        except UpdateUnbuildableError as error:
            outcome = AshbyOutcome.failed_in_truffle
            await asyncio.to_thread(
                self._give_up, DeliveryGivenUp(request.screening_id, request.kind, outcome)
            )
            raise ApplicationError(
                f"Truffle could not build the {request.kind} update ({error})",
                type=outcome.error_type,
                non_retryable=True,
            ) from None
        screening_id = uuid.UUID(request.screening_id)
        if prepared.delivered:
            # Delivered by an earlier attempt whose completion Temporal never heard of (which
            # settled the screening with it when it was the last update).
            return PostUpdateReceipt(timestamp_ms=prepared.timestamp_ms, request_id=None)
        if prepared.ashby_key is None:
            # Held (not retried): a reconnect stores a new key and releases the update.
            outcome = AshbyOutcome.key_unreadable if prepared.unreadable else AshbyOutcome.held
            await asyncio.to_thread(
                self._record, screening_id, prepared.workspace_id, request.kind, outcome, None
            )
            raise ApplicationError(
                "the stored Ashby key cannot be decrypted; held until the admin reconnects"
                if prepared.unreadable
                else "the Ashby connection is not live; the update is held until it is",
                type=outcome.error_type,
                non_retryable=True,
            )
        await self._wait_for_our_turn(prepared.workspace_id)
        reply = await self.ashby.call("assessment.update", prepared.ashby_key, prepared.body)
        if reply.partner_wide_throttle:
            self.throttle.pause_partner(reply.retry_after_seconds)
        activity.logger.info(
            "%s update to Ashby: %s (HTTP %s)", request.kind, reply.outcome, reply.http_status,
            extra={
                "screening_id": request.screening_id,
                "workspace_id": str(prepared.workspace_id),
                "ashby_request_id": reply.request_id,
                "outcome": str(reply.outcome),
            },
        )  # fmt: skip
        await asyncio.to_thread(
            self._record, screening_id, prepared.workspace_id, request.kind, reply.outcome,
            reply, prepared.update_id, prepared.report_link_id, request.settles,
        )  # fmt: skip
        where = f"HTTP {reply.http_status}, request id {reply.request_id or 'none'}"
        if reply.outcome == AshbyOutcome.ok:
            return PostUpdateReceipt(
                timestamp_ms=prepared.timestamp_ms, request_id=reply.request_id
            )
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

    async def _wait_for_our_turn(self, workspace_id: uuid.UUID) -> None:
        """Waits out a short throttle here; a long one becomes a retry Temporal schedules."""
        while (wait := self.throttle.wait_before_posting(workspace_id)) is not None:
            seconds, scope = wait
            metrics.ASHBY_THROTTLED.labels(scope).inc()
            if seconds > WAIT_IN_PLACE_SECONDS:
                raise ApplicationError(
                    "Ashby is throttling all of Truffle's traffic; posting again in "
                    f"{seconds:.0f} s"
                    if scope == "partner"
                    else f"this workspace's posts to Ashby are paced; posting in {seconds:.0f} s",
                    type=ASHBY_THROTTLED,
                    next_retry_delay=timedelta(seconds=seconds),
                )
            await asyncio.sleep(seconds)

    def _give_up(self, given_up: DeliveryGivenUp) -> None:
        screening_id = uuid.UUID(given_up.screening_id)
        with Session(self.engine) as session:
            screening = load_screening(session, given_up.screening_id)
            workspace_id = screening.workspace_id
            stored = session.exec(
                select(AshbyUpdate)
                .where(col(AshbyUpdate.screening_id) == screening_id)
                .where(col(AshbyUpdate.kind) == given_up.kind)
            ).first()
            if stored is None:
                stored = AshbyUpdate(
                    screening_id=screening_id, kind=given_up.kind, timestamp_ms=0, body={}
                )
            stored.given_up_at = stored.given_up_at or utcnow()
            session.add(stored)
            session.exec(
                sa.update(Screening)
                .where(col(Screening.id) == screening_id)
                .values(delivery_held=False)
            )
            session.commit()
        self._record(screening_id, workspace_id, given_up.kind, given_up.outcome, None)

    @activity.defn(name="give_up_update")
    async def give_up_update(self, given_up: DeliveryGivenUp) -> None:
        """An update that will never be sent (held past HELD_UPDATE_RETENTION): the delivery log
        and the connection's health say so."""
        await asyncio.to_thread(self._give_up, given_up)

    def _reopen_for_redelivery(self, ref: ScreeningRef) -> RedeliveryPlan:
        with Session(self.engine) as session:
            return reopen_for_redelivery(session, uuid.UUID(ref.screening_id))

    @activity.defn(name="reopen_for_redelivery")
    async def reopen_for_redelivery(self, ref: ScreeningRef) -> RedeliveryPlan:
        """An admin's "Send to Ashby again": reopens the updates that failed for good (or says
        why none can be sent), for the workflow to post them."""
        return await asyncio.to_thread(self._reopen_for_redelivery, ref)
