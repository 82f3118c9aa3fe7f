"""Activities of a screening's life: its emails, its score, closing it (cancel, expiry, an
invite that never arrived), and where it stands for a new run of its workflow.

Each one is idempotent: Temporal may run it more than once. Every activity is asynchronous and
its database work runs on a thread (`asyncio.to_thread`, on the worker's pool of
WORKER_ACTIVITY_THREADS), so it never holds up the worker's event loop.
"""

import asyncio
import uuid
from email.message import EmailMessage
from email.utils import formatdate

import sqlalchemy as sa
from sqlmodel import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.email import EmailFailedError, EmailUnconfirmedError, Mailer, new_message
from truffle.ashby import connection_health
from truffle.contracts import (
    EMAIL_DEFERRED,
    CloseRequest,
    ClosingResult,
    EmailFailureReport,
    EmailReceipt,
    EmailRequest,
    ExpiryCheck,
    ScoreSummary,
    ScreeningProgress,
    ScreeningRef,
    email_family,
    epoch_ms,
    from_epoch_ms,
    is_invite,
)
from truffle.position.positions import screening_version, settings_of
from truffle.position.scoring import CriteriaScorer, Scorer, scored_result, summary_of
from truffle.position.translations import deadline_text, invite_opening, translations
from truffle.runtime import metrics
from truffle.screening import email_claims
from truffle.screening.screenings import (
    close,
    disqualify,
    expire,
    expire_if_due,
    progress_of,
    record_email_failure,
    screening_and_version,
    settle,
)
from truffle.security.secrets import DecryptionError, KeyRing
from truffle.settings import Settings
from truffle.storage.tables import PositionVersion, Screening, utcnow


def load_screening(session: Session, screening_id: str) -> Screening:
    screening = session.get(Screening, uuid.UUID(screening_id))
    if screening is None:
        raise screening_not_found(screening_id)
    return screening


def screening_not_found(screening_id: str) -> ApplicationError:
    """Retryable: the API commits the row before it starts the workflow, so this means a
    lagging replica or a bug; the id is safe to show, nothing personal is."""
    return ApplicationError(f"screening {screening_id} not found", type="ScreeningNotFound")


class ScreeningActivities:
    def __init__(
        self,
        engine: sa.Engine,
        settings: Settings,
        keyring: KeyRing,
        mailer: Mailer,
        scorer: Scorer | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings
        self.keyring = keyring
        self.mailer = mailer
        self.scorer = scorer or CriteriaScorer()

    def screener_link(self, screening: Screening) -> str:
        token = self.keyring.unseal(screening.link_token_sealed, screening.id)
        return f"{self.settings.public_base_url}/s/{token}"

    def compose(self, screening: Screening, position: PositionVersion, kind: str) -> EmailMessage:
        """The email in the language of the position's version; an invite with the admin's
        own subject and opening when the version has them (plain text, placeholders filled)."""
        settings = settings_of(position)
        language = settings.language
        _ = translations(language).gettext
        link = self.screener_link(screening)
        deadline = deadline_text(screening.deadline_at, language)
        first_name = screening.candidate_first_name
        job = screening.job_name
        if is_invite(kind):
            subject, opening = invite_opening(
                settings, first_name=first_name, job_name=job, position_name=position.name,
                questions=len(position.questions), deadline=deadline,
            )  # fmt: skip
        else:
            subject = _("Reminder: your screening for %(job)s") % {"job": job}
            opening = _("This is a reminder that your screening for %(job)s is waiting.") % {
                "job": job
            }
        text = "\n\n".join(
            [
                _("Hi %(name)s,") % {"name": first_name},
                opening,
                _("Start here: %(link)s") % {"link": link},
                _("The link works until %(deadline)s.") % {"deadline": deadline},
                _("Good luck!") + "\n" + _("Truffle, on behalf of the hiring team") + "\n",
            ]
        )
        message = new_message()
        message["From"] = self.settings.smtp_from
        message["To"] = screening.candidate_email
        message["Subject"] = subject
        message["Date"] = formatdate(usegmt=True)
        domain = self.settings.smtp_from.rpartition("@")[2] or "truffle.local"
        message["Message-ID"] = f"<screening-{screening.id}-{kind}@{domain}>"
        message.set_content(text)
        # After `set_content`, which writes the content headers afresh.
        message["Content-Language"] = language
        return message

    def _prepare(self, request: EmailRequest) -> tuple[EmailMessage, email_claims.Claim] | None:
        """The message to send and this attempt's claim on it, or None when it was sent
        already or the screening closed. Composed, then claimed in the same session: one trip
        to a thread before SMTP."""
        with Session(self.engine) as session:
            found = screening_and_version(session, uuid.UUID(request.screening_id))
            if found is None:
                raise screening_not_found(request.screening_id)
            screening, position = found
            if request.kind in email_claims.sent_kinds(session, screening.id):
                return None
            if not screening.is_open:
                return None
            message = self._compose_or_fail(screening, position, request.kind)
            claim = email_claims.claim(
                session, screening.id, request.kind, str(message["Message-ID"])
            )
            return message, claim

    def _compose_or_fail(
        self, screening: Screening, position: PositionVersion, kind: str
    ) -> EmailMessage:
        """The message, or `EmailFailedError` (permanent) when it cannot be written."""
        try:
            return self.compose(screening, position, kind)
        except DecryptionError:
            raise EmailFailedError(
                "the screener link can no longer be read: its key was removed from "
                "TRUFFLE_SECRET_KEYS",
                smtp_code=None,
                permanent=True,
            ) from None
        except ValueError:
            # A header that cannot be written (a line break in a name, say): no retry
            # will change it. Which value it was stays out of the message on purpose.
            raise EmailFailedError(
                "the message could not be written: a name, title or address is not valid "
                "in an email header",
                smtp_code=None,
                permanent=True,
            ) from None

    def _settle_claim(self, request: EmailRequest, claim: email_claims.Claim, sent: bool) -> None:
        """Sent (or handed over unconfirmed): the claim stands. Certainly not sent: released."""
        assert claim.claimed_at is not None
        screening_id = uuid.UUID(request.screening_id)
        with Session(self.engine) as session:
            if sent:
                email_claims.mark_accepted(session, screening_id, request.kind, claim.claimed_at)
            else:
                email_claims.release(session, screening_id, request.kind, claim.claimed_at)

    def _record_unconfirmed(self, request: EmailRequest, claim: email_claims.Claim) -> None:
        assert claim.claimed_at is not None
        with Session(self.engine) as session:
            email_claims.mark_accepted(
                session,
                uuid.UUID(request.screening_id),
                request.kind,
                claim.claimed_at,
                unconfirmed=True,
            )

    def _record_failure(self, request: EmailRequest, failure: EmailFailedError) -> None:
        with Session(self.engine) as session:
            record_email_failure(
                session,
                uuid.UUID(request.screening_id),
                request.kind,
                failure.reason,
                failure.smtp_code,
            )

    @activity.defn(name="send_screening_email")
    async def send_screening_email(self, request: EmailRequest) -> EmailReceipt:
        """Sends one email of a screening, at most once, and only while the screening is open
        (checked in the claim made just before SMTP). A failure a retry cannot fix is recorded
        and raised as `EmailUndeliverable`; any other as `EmailDeferred`. An attempt cancelled
        or killed mid-send leaves its claim, which the next attempt takes over after
        `CLAIM_TTL`."""
        try:
            prepared = await asyncio.to_thread(self._prepare, request)
        except EmailFailedError as failure:
            raise await self._failed(request, failure) from None
        if prepared is None:
            metrics.EMAILS.labels(email_family(request.kind), "skipped").inc()
            return EmailReceipt(sent=False)
        message, claim = prepared
        if claim.outcome == email_claims.ClaimOutcome.in_flight:
            # Another attempt (one that overran its slot) is talking to the mail server now.
            raise ApplicationError(
                "another attempt is sending this email; checking again shortly",
                type=EMAIL_DEFERRED,
            )
        if claim.outcome != email_claims.ClaimOutcome.claimed:
            metrics.EMAILS.labels(email_family(request.kind), "skipped").inc()
            return EmailReceipt(sent=False)
        try:
            await self.mailer.send(message)
        except EmailUnconfirmedError as unconfirmed:
            # Handed over, then the connection broke: the server may well have it. Sending it
            # again could reach the candidate twice, so it counts as sent.
            await asyncio.to_thread(self._record_unconfirmed, request, claim)
            metrics.EMAILS.labels(email_family(request.kind), "unconfirmed").inc()
            activity.logger.warning(
                "%s email handed to the mail server, which never confirmed it (%s)",
                request.kind, unconfirmed, extra={"screening_id": request.screening_id},
            )  # fmt: skip
            return EmailReceipt(sent=True)
        except EmailFailedError as failure:
            await asyncio.to_thread(self._settle_claim, request, claim, False)
            raise await self._failed(request, failure) from None
        await asyncio.to_thread(self._settle_claim, request, claim, True)
        metrics.EMAILS.labels(email_family(request.kind), "sent").inc()
        return EmailReceipt(sent=True)

    async def _failed(self, request: EmailRequest, failure: EmailFailedError) -> ApplicationError:
        outcome = "undeliverable" if failure.permanent else "deferred"
        metrics.EMAILS.labels(email_family(request.kind), outcome).inc()
        activity.logger.warning(
            "%s email %s: %s", request.kind, outcome, failure.reason,
            extra={"screening_id": request.screening_id, "smtp_code": failure.smtp_code},
        )  # fmt: skip
        if failure.permanent:
            await asyncio.to_thread(self._record_failure, request, failure)
        return failure.as_application_error()

    @activity.defn(name="record_email_failure")
    async def record_email_failure(self, report: EmailFailureReport) -> None:
        """An email the mail server never took within its window (the workflow gave up)."""
        await asyncio.to_thread(self._record_email_failure, report)

    def _record_email_failure(self, report: EmailFailureReport) -> None:
        with Session(self.engine) as session:
            record_email_failure(
                session, uuid.UUID(report.screening_id), report.kind, report.reason, None
            )

    @activity.defn(name="score_screening")
    async def score_screening(self, ref: ScreeningRef) -> ScoreSummary:
        return await asyncio.to_thread(self._score_screening, ref)

    def _score_screening(self, ref: ScreeningRef) -> ScoreSummary:
        with Session(self.engine, expire_on_commit=False) as session:
            screening = load_screening(session, ref.screening_id)
            if screening.result is None:
                # The questions and criteria the candidate answered, not the current ones.
                position = screening_version(session, screening)
                screening.result = scored_result(
                    self.scorer,
                    position.questions,
                    screening.answers or [""] * len(position.questions),
                    started=screening.started_at or screening.created_at,
                    finished=screening.completed_at or utcnow(),
                )
                session.add(screening)
                session.commit()
            return summary_of(screening.result)

    @activity.defn(name="report_screening_failure")
    async def report_screening_failure(self, ref: ScreeningRef) -> None:
        await asyncio.to_thread(self._report_screening_failure, ref)

    def _report_screening_failure(self, ref: ScreeningRef) -> None:
        with Session(self.engine) as session:
            screening = load_screening(session, ref.screening_id)
            connection_health.record_failure(session, screening.workspace_id, None, utcnow())
            session.commit()

    @activity.defn(name="disqualify_application")
    async def disqualify_application(self, ref: ScreeningRef) -> ClosingResult:
        return await asyncio.to_thread(self._disqualify_application, ref)

    def _disqualify_application(self, ref: ScreeningRef) -> ClosingResult:
        with Session(self.engine) as session:
            return ClosingResult(status=disqualify(session, uuid.UUID(ref.screening_id)))

    @activity.defn(name="expire_screening")
    async def expire_screening(self, ref: ScreeningRef) -> ClosingResult:
        return await asyncio.to_thread(self._expire_screening, ref)

    def _expire_screening(self, ref: ScreeningRef) -> ClosingResult:
        with Session(self.engine) as session:
            return ClosingResult(status=expire(session, uuid.UUID(ref.screening_id)))

    @activity.defn(name="expire_if_due")
    async def expire_if_due(self, check: ExpiryCheck) -> ClosingResult:
        """The run's deadline came: expires the screening unless an admin extended it (then
        the database's deadline comes back, for the run to wait for)."""
        return await asyncio.to_thread(self._expire_if_due, check)

    def _expire_if_due(self, check: ExpiryCheck) -> ClosingResult:
        with Session(self.engine) as session:
            status, deadline = expire_if_due(
                session,
                uuid.UUID(check.screening_id),
                from_epoch_ms(check.deadline_ms),
            )
            return ClosingResult(status=status, deadline_ms=epoch_ms(deadline))

    @activity.defn(name="close_screening")
    async def close_screening(self, request: CloseRequest) -> ClosingResult:
        return await asyncio.to_thread(self._close_screening, request)

    def _close_screening(self, request: CloseRequest) -> ClosingResult:
        with Session(self.engine) as session:
            return ClosingResult(
                status=close(session, uuid.UUID(request.screening_id), request.reason)
            )

    @activity.defn(name="load_screening_progress")
    async def load_screening_progress(self, ref: ScreeningRef) -> ScreeningProgress:
        return await asyncio.to_thread(self._load_screening_progress, ref)

    def _load_screening_progress(self, ref: ScreeningRef) -> ScreeningProgress:
        with Session(self.engine) as session:
            load_screening(session, ref.screening_id)
            return progress_of(session, uuid.UUID(ref.screening_id))

    @activity.defn(name="settle_screening")
    async def settle_screening(self, ref: ScreeningRef) -> None:
        await asyncio.to_thread(self._settle_screening, ref)

    def _settle_screening(self, ref: ScreeningRef) -> None:
        with Session(self.engine) as session:
            status = settle(session, uuid.UUID(ref.screening_id))
        if status is not None:
            metrics.SCREENINGS_CLOSED.labels(status).inc()
