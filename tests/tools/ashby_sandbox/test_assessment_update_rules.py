"""`assessment.update` bodies judged by the sandbox agree with Ashby's published schema; the
rules the spec states only in words are proven one by one."""

import json
from functools import cache
from typing import Any

import httpx
import jsonschema
import pytest

from tools.ashby_sandbox.spec import request_schema, validate, validator

ASSESSMENT_ID = "e9ed20fd-d45f-4aad-8a00-a19bfba0083e"
TIMESTAMP = 1665680638489


def blob(identifier: str, type_: str = "string", value: object = "Invited") -> dict[str, Any]:
    return {"identifier": identifier, "label": identifier.title(), "type": type_, "value": value}


STATUS = blob("status")
PROFILE_URL = blob("profile", "url", "https://truffle.local/candidates/1")
RESULT = blob("result", "numeric_score", 87)


def update(**fields: object) -> dict[str, Any]:
    """A valid update with `fields` set on top."""
    valid = {"assessment_id": ASSESSMENT_ID, "timestamp": TIMESTAMP, "assessment_status": STATUS}
    return valid | fields


def without(body: dict[str, Any], name: str) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key != name}


def status_with(**fields: object) -> dict[str, Any]:
    return update(assessment_status=STATUS | fields)


def status_without(name: str) -> dict[str, Any]:
    return update(assessment_status=without(STATUS, name))


VALID_BODIES = {
    "status only": update(),
    "status with description": status_with(description="The candidate was invited"),
    "integer value": status_with(type="numeric_score", value=10),
    "float value": status_with(type="numeric_score", value=9.5),
    "boolean value": status_with(type="boolean_success", value=False),
    "empty string value": status_with(value=""),
    "duration type": status_with(type="numeric_duration_minutes", value=42),
    "url type": status_with(type="url", value="https://truffle.local"),
    "complete": update(
        assessment_profile_url=PROFILE_URL,
        assessment_result=RESULT,
        metadata=[
            blob("eta", "numeric_duration_minutes", 5),
            blob("passed", "boolean_success", True),
        ],
    ),
    "cancelled without status": without(
        update(cancelled_reason=blob("cancelled")), "assessment_status"
    ),
    "profile url without result": update(assessment_profile_url=PROFILE_URL),
    "empty metadata": update(metadata=[]),
    "unknown top-level property": update(source="truffle"),
    "unknown blob property": status_with(color="green"),
    "upper-case uuid": update(assessment_id=ASSESSMENT_ID.upper()),
    "largest int64 timestamp": update(timestamp=2**63 - 1),
    "zero timestamp": update(timestamp=0),
}

INVALID_BODIES = {
    "array body": [update()],
    "string body": "update",
    "number body": 42,
    "null body": None,
    "no assessment_id": without(update(), "assessment_id"),
    "assessment_id not a uuid": update(assessment_id="assessment-1"),
    "assessment_id without hyphens": update(assessment_id=ASSESSMENT_ID.replace("-", "")),
    "assessment_id a number": update(assessment_id=12345),
    "assessment_id null": update(assessment_id=None),
    "no timestamp": without(update(), "timestamp"),
    "timestamp with a fraction": update(timestamp=TIMESTAMP + 0.5),
    "timestamp a string": update(timestamp=str(TIMESTAMP)),
    "timestamp a boolean": update(timestamp=True),
    "timestamp null": update(timestamp=None),
    "timestamp beyond int64": update(timestamp=2**63),
    "status a string": update(assessment_status="Invited"),
    "status null": update(assessment_status=None),
    "status an array": update(assessment_status=[STATUS]),
    "status without identifier": status_without("identifier"),
    "status without label": status_without("label"),
    "status without type": status_without("type"),
    "status without value": status_without("value"),
    "identifier a number": status_with(identifier=7),
    "label null": status_with(label=None),
    "type not in the enum": status_with(type="percentage"),
    "type in another case": status_with(type="URL"),
    "type null": status_with(type=None),
    "value null": status_with(value=None),
    "value an object": status_with(value={"score": 1}),
    "value an array": status_with(value=[1, 2]),
    "description a number": status_with(description=3),
    "metadata an object": update(metadata={"eta": blob("eta")}),
    "metadata a string": update(metadata="eta"),
    "metadata null": update(metadata=None),
    "metadata item a string": update(metadata=["eta"]),
    "metadata item without value": update(metadata=[without(blob("eta"), "value")]),
    "metadata item with a bad type": update(metadata=[blob("eta") | {"type": "minutes"}]),
    "result with a null value": update(
        assessment_profile_url=PROFILE_URL, assessment_result=RESULT | {"value": None}
    ),
    "profile url an object value": update(assessment_profile_url=PROFILE_URL | {"value": {}}),
    "cancelled_reason null": update(cancelled_reason=None),
}


@cache
def spec_validator() -> jsonschema.Draft202012Validator:
    """The spec's request schema with its formats enforced, OpenAPI's `int64` included."""
    return validator(request_schema("/assessment.update"))


async def post_update(sandbox: httpx.AsyncClient, key: str, body: object) -> httpx.Response:
    return await sandbox.post(
        "/assessment.update",
        content=json.dumps(body),
        headers={"Content-Type": "application/json"},
        auth=(key, ""),
    )


async def recorded_updates(sandbox: httpx.AsyncClient) -> list[dict[str, Any]]:
    updates: list[dict[str, Any]] = (await sandbox.get("/_sandbox/assessment-updates")).json()[
        "updates"
    ]
    return updates


def assert_invalid_input(
    response: httpx.Response, envelope: dict[str, Any], *mentions: str
) -> None:
    assert response.status_code == 200
    body = response.json()
    validate(body, envelope)
    assert body["success"] is False
    assert body["errors"] == ["invalid_input"]
    assert body["errorInfo"]["code"] == "invalid_input"
    for mention in mentions:
        assert mention in body["errorInfo"]["message"]


@pytest.mark.parametrize(
    ("body", "spec_accepts"),
    [
        *(pytest.param(body, True, id=name) for name, body in VALID_BODIES.items()),
        *(pytest.param(body, False, id=name) for name, body in INVALID_BODIES.items()),
    ],
)
async def test_the_sandbox_accepts_exactly_what_the_spec_accepts(
    sandbox: httpx.AsyncClient,
    api_key: dict[str, Any],
    error_envelope_schema: dict[str, Any],
    body: object,
    spec_accepts: bool,
) -> None:
    assert spec_validator().is_valid(body) is spec_accepts

    response = await post_update(sandbox, api_key["key"], body)

    assert response.status_code == 200
    assert response.json()["success"] is spec_accepts
    if spec_accepts:
        assert response.json() == {"success": True, "results": {}}
        assert [update["body"] for update in await recorded_updates(sandbox)] == [body]
    else:
        assert_invalid_input(response, error_envelope_schema)
        assert await recorded_updates(sandbox) == []


@pytest.mark.parametrize(
    ("body", "mention"),
    [
        pytest.param(
            without(update(), "assessment_status"),
            "assessment_status is required unless cancelled_reason is sent",
            id="neither status nor cancelled_reason",
        ),
        pytest.param(
            update(assessment_result=RESULT),
            "assessment_profile_url is required when assessment_result is sent",
            id="result without profile url",
        ),
        pytest.param(
            update(metadata=[blob("status")]),
            "identifier 'status' is used by more than one blob",
            id="metadata repeats the status identifier",
        ),
        pytest.param(
            update(metadata=[blob("eta"), blob("eta")]),
            "identifier 'eta' is used by more than one blob",
            id="metadata repeats an identifier",
        ),
    ],
)
async def test_the_rules_the_spec_states_in_words_are_enforced(
    sandbox: httpx.AsyncClient,
    api_key: dict[str, Any],
    error_envelope_schema: dict[str, Any],
    body: dict[str, Any],
    mention: str,
) -> None:
    assert spec_validator().is_valid(body), "the schema alone cannot express this rule"

    response = await post_update(sandbox, api_key["key"], body)

    assert_invalid_input(response, error_envelope_schema, mention)
    assert await recorded_updates(sandbox) == []


async def test_a_timestamp_written_as_a_float_is_refused_although_json_schema_allows_it(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any], error_envelope_schema: dict[str, Any]
) -> None:
    body = update(timestamp=float(TIMESTAMP))
    assert spec_validator().is_valid(body)

    response = await post_update(sandbox, api_key["key"], body)

    assert_invalid_input(response, error_envelope_schema, "timestamp must be an integer")


@pytest.mark.parametrize("content", [b"{not json", b"", "{}".encode("utf-16")])
async def test_a_malformed_payload_is_invalid_input_at_http_200(
    sandbox: httpx.AsyncClient,
    api_key: dict[str, Any],
    error_envelope_schema: dict[str, Any],
    content: bytes,
) -> None:
    response = await sandbox.post(
        "/assessment.update",
        content=content,
        headers={"Content-Type": "application/json"},
        auth=(api_key["key"], ""),
    )
    assert_invalid_input(response, error_envelope_schema, "Request payload is malformed")


async def test_the_message_names_every_problem(
    sandbox: httpx.AsyncClient, api_key: dict[str, Any], error_envelope_schema: dict[str, Any]
) -> None:
    body = update(assessment_id="nope", metadata=[blob("eta") | {"value": None}])

    response = await post_update(sandbox, api_key["key"], body)

    assert_invalid_input(
        response,
        error_envelope_schema,
        "assessment_id: 'nope' is not a 'uuid'",
        "metadata[0].value: None is not valid",
    )
