"""The one client of the sandbox's admin endpoints (`/_sandbox/...`): what the tests and the demo
do in Ashby's place — create and revoke keys, queue faults, read what Ashby received, and call
the partner's endpoints as Ashby."""

import uuid
from typing import Any

import httpx

from truffle.runtime.tls import verified_tls

DEFAULT_SCOPES = ("apiKeysRead", "candidatesWrite")


class SandboxClient:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = timeout

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method, f"{self.base_url}/_sandbox{path}", timeout=self._timeout,
            verify=verified_tls(), **kwargs,
        )  # fmt: skip
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self) -> None:
        self._request("POST", "/reset")

    def create_key(
        self, scopes: tuple[str, ...] = DEFAULT_SCOPES, title: str = "Truffle"
    ) -> dict[str, str]:
        """A new Ashby API key: `{"id", "key", "title", "scopes", "createdAt"}`."""
        created: dict[str, str] = self._request(
            "POST", "/api-keys", json={"title": title, "scopes": list(scopes)}
        )
        return created

    def revoke_key(self, key_id: str) -> None:
        self._request("POST", f"/api-keys/{key_id}/revoke")

    def inject_fault(self, key_id: str, kind: str, count: int = 1, **options: object) -> None:
        """The next `count` calls with this key answer with `kind` (see `FaultKind`)."""
        self._request(
            "POST", f"/api-keys/{key_id}/faults", json={"kind": kind, "count": count, **options}
        )

    def calls(self) -> list[dict[str, Any]]:
        """Every call made to the sandbox's Ashby API, in order, whatever its outcome."""
        calls: list[dict[str, Any]] = self._request("GET", "/calls")["calls"]
        return calls

    def updates(self, assessment_id: str | None = None) -> list[dict[str, Any]]:
        """The `assessment.update`s Ashby accepted, oldest first."""
        params = {"assessment_id": assessment_id} if assessment_id else {}
        updates: list[dict[str, Any]] = self._request("GET", "/assessment-updates", params=params)[
            "updates"
        ]
        return updates

    def configure_partner(self, base_url: str, truffle_api_key: str) -> None:
        """What an Ashby admin does in Admin → Integrations → Truffle: the partner's base URL
        and the Truffle key to call it with."""
        self._request(
            "PUT", "/partner", json={"base_url": base_url, "truffle_api_key": truffle_api_key}
        )

    def add_webhook(self, webhook_type: str, request_url: str, secret_token: str) -> dict[str, Any]:
        """What an Ashby admin does in Admin → Integrations → Webhooks (Ashby pings it)."""
        added: dict[str, Any] = self._request(
            "POST",
            "/webhooks",
            json={
                "webhook_type": webhook_type,
                "request_url": request_url,
                "secret_token": secret_token,
            },
        )
        return added

    def webhooks(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._request("GET", "/webhooks")["webhooks"]
        return found

    def send_webhook(
        self,
        action: str,
        data: dict[str, Any],
        webhook_action_id: str | None = None,
        retry_scale: float = 1.0,
    ) -> list[dict[str, Any]]:
        """Ashby sends the event to every enabled webhook of its type; each delivery after its
        first attempt (retries go on in the sandbox)."""
        sent: list[dict[str, Any]] = self._request(
            "POST",
            "/webhooks/send",
            json={
                "action": action,
                "data": data,
                "webhook_action_id": webhook_action_id,
                "retry_scale": retry_scale,
            },
        )["deliveries"]
        return sent

    def webhook_deliveries(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = self._request("GET", "/webhooks/deliveries")["deliveries"]
        return found

    def call_partner(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Ashby calls the partner's `method`: `{"status_code", "body"}` of the partner's reply."""
        reply: dict[str, Any] = self._request("POST", f"/partner/{method}", json=body or {})
        return reply


def assessment_start_body(
    position_id: str, email: str, first_name: str = "Grace", last_name: str = "Hopper"
) -> dict[str, Any]:
    """What Ashby sends to `assessment.start` for one candidate, with fresh Ashby ids."""
    suffix = uuid.uuid4().hex[:10]
    return {
        "assessment_type_id": position_id,
        "candidate": {
            "ashby_id": f"candidate-{suffix}",
            "first_name": first_name,
            "last_name": last_name,
            "email": email,
            "ashby_profile_url": "https://app.ashbyhq.com/candidates/1",
        },
        "application": {"ashby_id": f"application-{suffix}", "status": "Active"},
        "job": {
            "ashby_id": "job-1",
            "name": "Backend Engineer",
            "ashby_job_url": "https://app.ashbyhq.com/jobs/1",
        },
    }


def application_event_data(
    application_id: str, status: str, candidate_id: str = "candidate-1"
) -> dict[str, Any]:
    """`data` of an `applicationUpdate` (or `candidateHire`) as Ashby sends it: the whole
    application, the candidate's name and email included."""
    now = "2026-11-29T10:00:00.000Z"
    application: dict[str, Any] = {
        "id": application_id,
        "createdAt": now,
        "updatedAt": now,
        "status": status,
        "customFields": [],
        "candidate": {
            "id": candidate_id,
            "name": "Grace Hopper",
            "primaryEmailAddress": {
                "value": "grace@example.test",
                "type": "Work",
                "isPrimary": True,
            },
        },
        "currentInterviewStage": {
            "id": "3c1d2b4a-8e7f-4a6b-9c5d-1e2f3a4b5c6d",
            "title": "Hired" if status == "Hired" else "Application Review",
            "type": status if status in ("Hired", "Archived") else "Active",
            "orderInInterviewPlan": 1,
            "interviewPlanId": "7a6b5c4d-3e2f-4a1b-8c9d-0e1f2a3b4c5d",
        },
        "job": {"id": "job-1", "title": "Backend Engineer"},
        "hiringTeam": [],
    }
    if status == "Archived":
        application["archivedAt"] = now
        application["archiveReason"] = {
            "id": "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
            "text": "Not a fit",
            "reasonType": "RejectedByOrg",
            "isArchived": False,
            "customFields": [],
        }
    return {"application": application}


def candidate_delete_data(candidate_id: str) -> dict[str, Any]:
    return {"candidate": {"id": candidate_id}}


def candidate_merge_data(merged_away_id: str, surviving_id: str) -> dict[str, Any]:
    return {"deletedCandidate": {"id": merged_away_id}, "mergedCandidate": {"id": surviving_id}}
