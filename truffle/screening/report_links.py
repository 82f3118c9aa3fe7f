"""Report links: what the hiring team opens from a candidate's profile in Ashby (`GET
/r/{token}`), with no sign-in.

A token is 256 bits, derived with HMAC-SHA256 from the link's random id and a key of
TRUFFLE_SECRET_KEYS, and only its SHA-256 digest is stored: the link is found by its digest, and
Truffle can put the link in the update it posts to Ashby (again, identically, on a retry)
without ever storing the token. A screening has one live link at a time; issuing a new one
revokes the old at once. A link works for REPORT_LINK_LIFETIME after it is issued.
"""

import base64
import hashlib
import hmac
import uuid
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, select

from truffle import audit
from truffle.audit import Actor, AuditAction
from truffle.contracts import UpdateKind
from truffle.security.secrets import DecryptionError, KeyRing
from truffle.storage.tables import AshbyUpdate, ReportLink, Screening, insert_row, table_of, utcnow

PATH = "/r/"
# What the stored update to Ashby holds instead of the link (the token is never stored): the
# post puts the screening's current link in its place.
PLACEHOLDER = "{report_link}"


def _token(keyring: KeyRing, link: ReportLink) -> str:
    key = keyring.encryption_key(link.key_fingerprint)
    mac = hmac.new(key, b"report-link/" + link.id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def digest_of(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def url_of(keyring: KeyRing, public_base_url: str, link: ReportLink) -> str:
    """The link's address. Raises `DecryptionError` once its key left TRUFFLE_SECRET_KEYS (the
    link still opens; a new one is issued for what is sent from then on)."""
    return f"{public_base_url}{PATH}{_token(keyring, link)}"


_LINKS = table_of(ReportLink)
# Built once: every result's post runs them.
_REVOKE = (
    sa.update(_LINKS)
    .where(_LINKS.c.screening_id == sa.bindparam("screening"))
    .where(_LINKS.c.revoked_at.is_(None))
    .values(revoked_at=sa.bindparam("at"))
)
_ANNOUNCED = (
    sa.update(_LINKS)
    .where(_LINKS.c.id == sa.bindparam("link_id"))
    .where(_LINKS.c.announced_at.is_(None))
    .values(announced_at=sa.bindparam("at"))
)


def issue(
    session: Session,
    keyring: KeyRing,
    screening_id: uuid.UUID,
    lifetime: timedelta,
    now: datetime | None = None,
) -> ReportLink:
    """A new link for the screening; the one before stops working at once (the caller
    commits)."""
    now = now or utcnow()
    session.execute(_REVOKE, {"screening": screening_id, "at": now})
    key = keyring.encryption_key()
    link = ReportLink(
        screening_id=screening_id,
        token_digest="",
        key_fingerprint=keyring.fingerprint_of(key),
        issued_at=now,
        expires_at=now + lifetime,
    )
    link.token_digest = digest_of(_token(keyring, link))
    insert_row(session.connection(), link)
    return link


def current(session: Session, screening_id: uuid.UUID) -> ReportLink | None:
    """The screening's live link (not revoked; it may have expired)."""
    return session.exec(
        select(ReportLink)
        .where(col(ReportLink.screening_id) == screening_id)
        .where(col(ReportLink.revoked_at).is_(None))
    ).first()


def current_url(
    session: Session,
    keyring: KeyRing,
    screening_id: uuid.UUID,
    public_base_url: str,
    lifetime: timedelta,
) -> tuple[ReportLink, str]:
    """The screening's live link and its address, a new one issued when there is none, it
    has expired, or its key is gone (the caller commits)."""
    link = current(session, screening_id)
    if link is not None and link.expires_at > utcnow():
        try:
            return link, url_of(keyring, public_base_url, link)
        except DecryptionError:
            pass
    link = issue(session, keyring, screening_id, lifetime)
    return link, url_of(keyring, public_base_url, link)


def screening_for(session: Session, token: str) -> Screening | None:
    """The screening a live, unexpired link opens; None for any other token. One query whose
    cost does not depend on why a token opens nothing (wrong, revoked or expired)."""
    if not token or len(token) > 64:
        token = ""
    return session.exec(
        select(Screening)
        .join(ReportLink, col(ReportLink.screening_id) == col(Screening.id))
        .where(col(ReportLink.token_digest) == digest_of(token))
        .where(col(ReportLink.revoked_at).is_(None))
        .where(col(ReportLink.expires_at) > utcnow())
    ).first()


def mark_announced(session: Session, link_id: uuid.UUID) -> None:
    session.execute(_ANNOUNCED, {"link_id": link_id, "at": utcnow()})


def awaiting_announcement(session: Session, screening_id: uuid.UUID) -> bool:
    """A live link Ashby has not been sent yet, for a screening whose result Ashby has: it
    needs the new link (after a revocation)."""
    link = current(session, screening_id)
    return link is not None and link.announced_at is None


class ReportLinkRefusedError(Exception):
    """A new report link cannot be issued; the message says why, in words."""


def reissue(
    session: Session,
    keyring: KeyRing,
    screening: Screening,
    lifetime: timedelta,
    public_base_url: str,
    *,
    actor: Actor,
) -> tuple[ReportLink, str, bool]:
    """An admin's new report link for the screening, with its audit row, in one transaction:
    the old link stops working at once. Returns the link, its address (shown to the admin
    once) and whether Ashby is to be sent it (Ashby has the result, which carried the old
    link; the screening is unsettled until it is sent, so the reconciler sees to it)."""
    if screening.erased_at is not None:
        raise ReportLinkRefusedError(
            "The candidate was deleted in Ashby: their report is gone, and no link to it can "
            "be issued."
        )
    link = issue(session, keyring, screening.id, lifetime)
    result_delivered = session.exec(
        select(AshbyUpdate.id)
        .where(col(AshbyUpdate.screening_id) == screening.id)
        .where(col(AshbyUpdate.kind) == UpdateKind.result)
        .where(col(AshbyUpdate.delivered_at).is_not(None))
    ).first()
    announce = result_delivered is not None and screening.cancel_requested_at is None
    if announce:
        # The update that carried the previous link goes, so the next one carries this one.
        session.exec(
            sa.delete(AshbyUpdate)
            .where(col(AshbyUpdate.screening_id) == screening.id)
            .where(col(AshbyUpdate.kind) == UpdateKind.report_link)
        )
        session.exec(
            sa.update(Screening).where(col(Screening.id) == screening.id).values(settled_at=None)
        )
    audit.record(
        session, screening.workspace_id, AuditAction.report_link_reissued, actor,
        outcome="issued; Ashby is sent the new link" if announce else "issued",
        screening_id=screening.id, position_id=screening.position_id,
    )  # fmt: skip
    session.commit()
    return link, url_of(keyring, public_base_url, link), announce


def record_view(session: Session, screening: Screening) -> None:
    """A view of the report, in the audit trail by the screening's id alone: nothing about
    who opened it (an address, a browser) is kept."""
    audit.record(
        session, screening.workspace_id, AuditAction.report_viewed, Actor.report_link(),
        outcome="opened", screening_id=screening.id, position_id=screening.position_id,
    )  # fmt: skip
    session.commit()
