"""Ashby's rules for an `assessment.update` body: its published schema (the copy in `spec/`)
plus the rules its text states (spec/CONTRACT.md).

Unknown properties are allowed, as the schema does not forbid them. One rule is stricter than
JSON Schema: a timestamp must be a JSON integer, while JSON Schema also counts `5.0` as one,
so that a client serialising timestamps as floats is caught here rather than by Ashby.
"""

from tools.ashby_sandbox.spec import request_schema, schema_problems

BLOB_FIELDS = (
    "assessment_status",
    "assessment_profile_url",
    "assessment_result",
    "cancelled_reason",
)


def assessment_update_problems(body: object) -> list[str]:
    """Every reason Ashby refuses `body`, in reading order; empty when it accepts it."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    problems = schema_problems(body, request_schema("/assessment.update"))
    timestamp = body.get("timestamp")
    if isinstance(timestamp, float) and timestamp.is_integer():
        problems.append("timestamp must be an integer (milliseconds since the epoch)")
    if "assessment_status" not in body and "cancelled_reason" not in body:
        problems.append("assessment_status is required unless cancelled_reason is sent")
    if "assessment_result" in body and "assessment_profile_url" not in body:
        problems.append("assessment_profile_url is required when assessment_result is sent")
    return problems + _duplicate_identifier_problems(body)


def _duplicate_identifier_problems(body: dict[str, object]) -> list[str]:
    blobs = [body[name] for name in BLOB_FIELDS if name in body]
    metadata = body.get("metadata")
    if isinstance(metadata, list):
        blobs += metadata
    seen: set[str] = set()
    repeated: list[str] = []
    for blob in blobs:
        if isinstance(blob, dict) and isinstance(blob.get("identifier"), str):
            identifier: str = blob["identifier"]
            if identifier in seen and identifier not in repeated:
                repeated.append(identifier)
            seen.add(identifier)
    return [f"identifier {identifier!r} is used by more than one blob" for identifier in repeated]
