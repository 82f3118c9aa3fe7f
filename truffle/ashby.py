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

from truffle.contracts import AshbyOutcome, CloseReason, UpdateKind
from truffle.tables import PositionVersion, Screening

USER_AGENT = "Truffle-Ashby-Integration/0.1"
DEFAULT_TIMEOUT_SECONDS = 10.0


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
        self._http = http or httpx.AsyncClient(timeout=DEFAULT_TIMEOUT_SECONDS)

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


def invited_update(assessment_id: uuid.UUID, timestamp_ms: int) -> dict[str, Any]:
    """The first status, sent inline in the `assessment.start` reply."""
    return {
        "assessment_id": str(assessment_id),
        "timestamp": timestamp_ms,
        "assessment_status": status_blob("Invited"),
    }


def profile_url(public_base_url: str, screening_id: uuid.UUID) -> str:
    return f"{public_base_url}/screenings/{screening_id}"


def deadline_date(deadline: datetime) -> str:
    """The deadline's day as Ashby's status names it (UTC): `2026-12-12`."""
    return deadline.astimezone(UTC).strftime("%Y-%m-%d")


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


def build_update(
    screening: Screening,
    position: PositionVersion,
    kind: UpdateKind,
    timestamp_ms: int,
    base_url: str,
    reason: CloseReason | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {"assessment_id": str(screening.id), "timestamp": timestamp_ms}
    metadata = [expiry_blob(screening.deadline_at)]
    body["metadata"] = metadata
    if kind == UpdateKind.invited:
        body["assessment_status"] = status_blob(
            f"Invited · expires {deadline_date(screening.deadline_at)}"
        )
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
        body["assessment_profile_url"] = blob(
            "truffle_profile", "Truffle screening", "url", profile_url(base_url, screening.id)
        )
        body["assessment_result"] = {
            **blob("truffle_match_score", "Match score", "numeric_score", result["match_score"]),
            "description": "0-100 match with the position's scoring criteria",
        }
        metadata += [
            blob("truffle_tier", "Tier", "string", result["tier"]),
            blob("truffle_summary", "Summary", "string", result["summary"]),
            blob(
                "truffle_duration",
                "Time taken",
                "numeric_duration_minutes",
                result["duration_minutes"],
            ),
        ]
        for question in result["questions"]:
            if question["score"] is None:
                continue
            number = question["question_index"] + 1
            prompt = position.questions[question["question_index"]]["prompt"]
            label = f"Q{number}: {prompt}"
            metadata.append(
                blob(
                    f"truffle_question_{number}",
                    label if len(label) <= 80 else label[:79] + "…",
                    "numeric_score",
                    question["score"],
                )
            )
    return body
