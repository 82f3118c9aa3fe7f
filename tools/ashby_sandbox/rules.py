"""Ashby's rules for an `assessment.update` body: its published schema plus the rules its text
states (shared/ashby/CONTRACT.md).

Unknown properties are allowed, as the schema does not forbid them. One rule is stricter than
JSON Schema: a timestamp must be a JSON integer, while JSON Schema also counts `5.0` as one,
so that a client serialising timestamps as floats is caught here rather than by Ashby.
"""

import re

BLOB_FIELDS = (
    "assessment_status",
    "assessment_profile_url",
    "assessment_result",
    "cancelled_reason",
)
BLOB_TYPES = ("numeric_score", "numeric_duration_minutes", "url", "string", "boolean_success")
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def assessment_update_problems(body: object) -> list[str]:
    """Every reason Ashby refuses `body`, in reading order; empty when it accepts it."""
    if not isinstance(body, dict):
        return ["the body must be a JSON object"]
    problems = [*_assessment_id_problems(body), *_timestamp_problems(body)]
    blobs: list[tuple[str, object]] = [(name, body[name]) for name in BLOB_FIELDS if name in body]
    if "metadata" in body:
        metadata = body["metadata"]
        if isinstance(metadata, list):
            blobs += [(f"metadata[{index}]", item) for index, item in enumerate(metadata)]
        else:
            problems.append("metadata must be an array of blobs")
    for where, blob in blobs:
        problems += _blob_problems(where, blob)
    if "assessment_status" not in body and "cancelled_reason" not in body:
        problems.append("assessment_status is required unless cancelled_reason is sent")
    if "assessment_result" in body and "assessment_profile_url" not in body:
        problems.append("assessment_profile_url is required when assessment_result is sent")
    problems += _duplicate_identifier_problems(blobs)
    return problems


def _assessment_id_problems(body: dict[str, object]) -> list[str]:
    if "assessment_id" not in body:
        return ["assessment_id is required"]
    assessment_id = body["assessment_id"]
    if not isinstance(assessment_id, str) or not _UUID.fullmatch(assessment_id):
        return ["assessment_id must be a uuid string"]
    return []


def _timestamp_problems(body: dict[str, object]) -> list[str]:
    if "timestamp" not in body:
        return ["timestamp is required"]
    timestamp = body["timestamp"]
    if isinstance(timestamp, bool) or not isinstance(timestamp, int):
        return ["timestamp must be an integer (milliseconds since the epoch)"]
    if not INT64_MIN <= timestamp <= INT64_MAX:
        return ["timestamp must fit in a signed 64-bit integer"]
    return []


def _blob_problems(where: str, blob: object) -> list[str]:
    if not isinstance(blob, dict):
        return [f"{where} must be an object"]
    problems: list[str] = []
    for name in ("identifier", "label", "type", "value"):
        if name not in blob:
            problems.append(f"{where}.{name} is required")
    for name in ("identifier", "label", "description"):
        if name in blob and not isinstance(blob[name], str):
            problems.append(f"{where}.{name} must be a string")
    if "type" in blob and blob["type"] not in BLOB_TYPES:
        problems.append(f"{where}.type must be one of {', '.join(BLOB_TYPES)}")
    # bool is an int in Python, so this admits exactly JSON's strings, numbers and booleans.
    if "value" in blob and not isinstance(blob["value"], str | int | float):
        problems.append(f"{where}.value must be a string, number or boolean")
    return problems


def _duplicate_identifier_problems(blobs: list[tuple[str, object]]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for _, blob in blobs:
        if isinstance(blob, dict) and isinstance(blob.get("identifier"), str):
            identifier: str = blob["identifier"]
            if identifier in seen and identifier not in repeated:
                repeated.append(identifier)
            seen.add(identifier)
    return [f"identifier {identifier!r} is used by more than one blob" for identifier in repeated]
