"""Ashby's API as we call it (`apiKey.info`, `assessment.update`), each reply sorted by outcome.

Ashby answers most failures with HTTP 200 and `success: false`, so the body decides, not only
the status code (see tools/ashby_sandbox/spec/CONTRACT.md).
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from truffle.contracts import AshbyOutcome, CloseReason, UpdateKind, epoch_ms
from truffle.position.scoring import MAX_SCORE
from truffle.runtime.tls import verified_tls
from truffle.screening import report_links
from truffle.storage.tables import PositionVersion, Screening

USER_AGENT = "Truffle-Ashby-Integration/0.1"
# The permissions an Ashby API key must have for Truffle, and what each is for. (`apiKeysWrite`
# is welcome, not required: with it Truffle registers its webhooks itself; without it the admin
# adds them by hand.)
REQUIRED_SCOPES = {"candidatesWrite": "post screening statuses and results (assessment.update)"}
WHERE_TO_GRANT = (
    "In Ashby, go to Admin → Integrations → API Keys, open the key (or create a new one), "
    "tick the missing permission, save, and paste the key here again."
)


def missing_scopes(reply: "AshbyReply") -> list[str]:
    """The required permissions a key that `apiKey.info` described lacks (none when Ashby did
    not list them: a key without `apiKeysRead` cannot be read, and is checked by its first
    post instead)."""
    results = reply.results if isinstance(reply.results, dict) else {}
    scopes = results.get("scopes")
    if reply.outcome != AshbyOutcome.ok or not isinstance(scopes, list):
        return []
    return [scope for scope in REQUIRED_SCOPES if scope not in scopes]


def missing_scopes_message(missing: list[str]) -> str:
    needs = "; ".join(f"{scope}, to {REQUIRED_SCOPES[scope]}" for scope in missing)
    return (
        f"This Ashby API key lacks the permission{'s' if len(missing) > 1 else ''} Truffle "
        f"needs: {needs}. {WHERE_TO_GRANT} Nothing was saved."
    )


DEFAULT_TIMEOUT_SECONDS = 10.0


def ashby_http(
    timeout: float = DEFAULT_TIMEOUT_SECONDS, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """An HTTP client for Ashby's API, verifying its certificate as httpx does by default."""
    return httpx.AsyncClient(timeout=timeout, transport=transport, verify=verified_tls())


@dataclass(frozen=True)
class AshbyReply:
    outcome: AshbyOutcome
    http_status: int | None
    error_code: str | None = None
    error_message: str | None = None
    request_id: str | None = None
    retry_after_seconds: float | None = None
    partner_wide_throttle: bool = False
    results: Any = None


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def classify(response: httpx.Response) -> AshbyReply:
    try:
        body = response.json()
    except ValueError:
        body = None
    error_info = body.get("errorInfo") if isinstance(body, dict) else None
    error_info = error_info if isinstance(error_info, dict) else {}
    code = error_info.get("code") if isinstance(error_info.get("code"), str) else None
    message = error_info.get("message") if isinstance(error_info.get("message"), str) else None
    request_id = (
        error_info.get("requestId") if isinstance(error_info.get("requestId"), str) else None
    )
    status = response.status_code

    def reply(outcome: AshbyOutcome, **extra: Any) -> AshbyReply:
        return AshbyReply(
            outcome=outcome,
            http_status=status,
            error_code=code,
            error_message=message,
            request_id=request_id,
            **extra,
        )

    if status == 429:
        return reply(
            AshbyOutcome.rate_limited,
            retry_after_seconds=_retry_after(response.headers.get("Retry-After")),
            partner_wide_throttle=response.headers.get("X-RateLimit-Scope")
            == "integration-partner",
        )
    if status == 403 and code == "missing_endpoint_permission":
        return reply(AshbyOutcome.missing_permission)
    if status in (401, 403):
        return reply(AshbyOutcome.key_rejected)
    if status >= 500 or not isinstance(body, dict):
        return reply(AshbyOutcome.server_error)
    if status != 200 or body.get("success") is not True:
        return reply(AshbyOutcome.rejected)
    return reply(AshbyOutcome.ok, results=body.get("results"))


class AshbyClient:
    def __init__(self, base_url: str, http: httpx.AsyncClient | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http or ashby_http()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def call(self, endpoint: str, api_key: str, body: dict[str, Any]) -> AshbyReply:
        try:
            response = await self._http.post(
                f"{self.base_url}/{endpoint}",
                json=body,
                auth=(api_key, ""),
                headers={
                    "Accept": "application/json; version=1",
                    "User-Agent": USER_AGENT,
                },
            )
        except httpx.TimeoutException:
            return AshbyReply(outcome=AshbyOutcome.unreachable, http_status=None,
                              error_message="Ashby did not answer in time")  # fmt: skip
        except httpx.TransportError:
            return AshbyReply(outcome=AshbyOutcome.unreachable, http_status=None,
                              error_message="Ashby could not be reached")  # fmt: skip
        return classify(response)

    async def api_key_info(self, api_key: str) -> AshbyReply:
        return await self.call("apiKey.info", api_key, {})


# The bodies of `assessment.update`, as we send them


def blob(identifier: str, label: str, kind: str, value: str | int | float | bool) -> dict[str, Any]:
    return {"identifier": identifier, "label": label, "type": kind, "value": value}


def status_blob(value: str) -> dict[str, Any]:
    return blob("truffle_status", "Truffle status", "string", value)


def invited_update(screening: Screening) -> dict[str, Any]:
    """The first status, with the deadline, sent inline in the `assessment.start` reply (and
    stored as delivered with the screening): the same body an "Invited" post would carry."""
    return {
        "assessment_id": str(screening.id),
        "timestamp": epoch_ms(screening.created_at),
        "metadata": [expiry_blob(screening.deadline_at)],
        "assessment_status": invited_status(screening.deadline_at),
    }


def deadline_date(deadline: datetime) -> str:
    """The deadline's day as Ashby's status names it (UTC): `2026-12-12`."""
    return deadline.astimezone(UTC).strftime("%Y-%m-%d")


def invited_status(deadline: datetime) -> dict[str, Any]:
    return status_blob(f"Invited · expires {deadline_date(deadline)}")


def expiry_blob(deadline: datetime) -> dict[str, Any]:
    """When the screener link stops working: sent with every update."""
    return {
        **blob(
            "truffle_expires_at",
            "Link expires",
            "string",
            deadline.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        ),
        "description": "When the candidate's screening link stops working",
    }


def cancelled_reason_blob(reason: CloseReason) -> dict[str, Any]:
    text = reason.ashby_text
    if text is None:
        raise ValueError(f"Ashby is not told about a close for {reason}")
    return blob("truffle_cancelled_reason", "Reason", "string", text)


def needs_position(kind: UpdateKind) -> bool:
    """Whether `build_update` reads the position's version for this kind (the result's
    per-question scores name its questions)."""
    return kind in (UpdateKind.result, UpdateKind.report_link)


@dataclass(frozen=True)
class UpdateSubject:
    """The fields of a screening an update to Ashby is built from (read without loading the
    whole row)."""

    id: uuid.UUID
    deadline_at: datetime
    started_at: datetime | None
    close_reason: CloseReason | None
    result: dict[str, Any] | None


def build_update(
    screening: Screening | UpdateSubject,
    position: PositionVersion | None,
    kind: UpdateKind,
    timestamp_ms: int,
    base_url: str,
    reason: CloseReason | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"assessment_id": str(screening.id), "timestamp": timestamp_ms}
    metadata = [expiry_blob(screening.deadline_at)]
    body["metadata"] = metadata
    if kind in (UpdateKind.result, UpdateKind.report_link):
        kind = UpdateKind.result
    if kind == UpdateKind.deadline:
        # The status Ashby has, naming the new deadline while the candidate has not begun.
        kind = UpdateKind.started if screening.started_at is not None else UpdateKind.invited
    if kind == UpdateKind.invited:
        body["assessment_status"] = invited_status(screening.deadline_at)
    elif kind == UpdateKind.started:
        body["assessment_status"] = status_blob("Started")
    elif kind == UpdateKind.expired:
        body["cancelled_reason"] = cancelled_reason_blob(CloseReason.expired)
    elif kind == UpdateKind.cancelled:
        body["cancelled_reason"] = cancelled_reason_blob(
            reason or screening.close_reason or CloseReason.cancelled_in_truffle
        )
    else:
        result = screening.result
        if result is None:
            raise ValueError(f"screening {screening.id} has no score yet")
        body["assessment_status"] = status_blob("Completed")
        # The report link is put in when the update is posted
        # (truffle/screening/report_links.py): its token is never stored, not even here.
        body["assessment_profile_url"] = {
            **blob("truffle_report", "Truffle report", "url", report_links.PLACEHOLDER),
            "description": "The screening's report: answers, scores and timeline (no sign-in)",
        }
        body["assessment_result"] = {
            **blob("truffle_match_score", "Match score", "numeric_score", result["match_score"]),
            "description": f"0-{MAX_SCORE} match with the position's scoring criteria",
        }
        metadata += [
            {
                **blob("truffle_max_score", "Max score", "numeric_score", MAX_SCORE),
                "description": "The highest match score a candidate can get",
            },
            blob("truffle_tier", "Tier", "string", result["tier"]),
            blob("truffle_summary", "Summary", "string", result["summary"]),
            blob(
                "truffle_duration",
                "Time taken",
                "numeric_duration_minutes",
                result["duration_minutes"],
            ),
        ]
        if position is None:
            raise ValueError("a result names the position's questions: give its version")
        metadata += score_blobs(result, position)
    return body


def _short(label: str) -> str:
    return label if len(label) <= 80 else label[:79] + "…"


def score_blobs(result: dict[str, Any], position: PositionVersion) -> list[dict[str, Any]]:
    """A `numeric_score` blob for every scored question and every criterion, each under the id
    it keeps across edits and position versions (`truffle_question_<id>`,
    `truffle_criterion_<id>`): Ashby can filter candidates by them across jobs."""
    blobs = []
    for question in result["questions"]:
        if question["score"] is None:
            continue
        index = question["question_index"]
        asked = position.questions[index]
        number = index + 1
        question_id = question.get("question_id") or asked.get("id") or str(number)
        blobs.append(
            {
                **blob(
                    f"truffle_question_{question_id}",
                    _short(f"Q{number}: {asked['prompt']}"),
                    "numeric_score",
                    question["score"],
                ),
                "description": f"Question {number}, out of {MAX_SCORE}",
            }
        )
        for criterion in criteria_scored(question, asked):
            blobs.append(
                {
                    **blob(
                        f"truffle_criterion_{criterion['id']}",
                        _short(f"Q{number} · {criterion['label']}"),
                        "numeric_score",
                        MAX_SCORE if criterion["met"] else 0,
                    ),
                    "description": (
                        f"{'Met' if criterion['met'] else 'Not met'} (weight "
                        f"{criterion['weight']:g} in question {number}), out of {MAX_SCORE}"
                    ),
                }
            )
    return blobs


def criteria_scored(question: dict[str, Any], asked: dict[str, Any]) -> list[dict[str, Any]]:
    """Each criterion of a scored question: id, label, weight and whether the answer met it
    (results scored before criteria had ids are matched to the version's criteria by label)."""
    if question.get("criteria"):
        return [
            {**criterion, "id": criterion.get("id") or _id_by_label(asked, criterion["label"])}
            for criterion in question["criteria"]
        ]
    met = set(question.get("met") or [])
    return [
        {
            "id": criterion.get("id") or criterion["label"],
            "label": criterion["label"],
            "weight": float(criterion["weight"]),
            "met": criterion["label"] in met,
        }
        for criterion in asked.get("criteria") or []
    ]


def _id_by_label(asked: dict[str, Any], label: str) -> str:
    for criterion in asked.get("criteria") or []:
        if criterion["label"] == label and criterion.get("id"):
            return str(criterion["id"])
    return label
