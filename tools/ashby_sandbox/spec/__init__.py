"""Ashby's published OpenAPI documents, as copied into this folder (see SOURCE.md), and JSON
Schema validation against them: the sandbox judges `assessment.update` bodies with the
assessment document, and the tests validate what crosses the wire (the partner calls, and the
webhook payloads the sandbox sends) with the very same files."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

SPEC_PATH = Path(__file__).resolve().parent / "ashby-assessment-openapi.json"
WEBHOOKS_SPEC_PATH = Path(__file__).resolve().parent / "ashby-webhooks-openapi.json"
_INT64 = (-(2**63), 2**63 - 1)


@cache
def ashby_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec


@cache
def webhooks_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(WEBHOOKS_SPEC_PATH.read_text())
    return spec


def webhook_payload_schema(action: str) -> dict[str, Any]:
    """The body Ashby sends for a webhook of this type (`ping` included)."""
    return _json_content(webhooks_spec()["webhooks"][action]["post"]["requestBody"])


def _json_content(operation: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = operation["content"]["application/json"]["schema"]
    return schema


def request_schema(path: str) -> dict[str, Any]:
    return _json_content(ashby_spec()["paths"][path]["post"]["requestBody"])


def response_schema(path: str, status: str = "200") -> dict[str, Any]:
    return _json_content(ashby_spec()["paths"][path]["post"]["responses"][status])


def _is_int64(instance: object) -> bool:
    return not isinstance(instance, int) or _INT64[0] <= instance <= _INT64[1]


def _format_checker() -> jsonschema.FormatChecker:
    """JSON Schema's formats (uuid, uri, email...) plus OpenAPI's `int64`."""
    checker = jsonschema.FormatChecker()
    checker.checks("int64")(_is_int64)
    return checker


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=_format_checker())


def validate(instance: object, schema: dict[str, Any]) -> None:
    """Raises `jsonschema.ValidationError` unless `instance` matches `schema`."""
    validator(schema).validate(instance)


def schema_problems(instance: object, schema: dict[str, Any]) -> list[str]:
    """Every way `instance` breaks `schema`, each naming where (`metadata[0].value: ...`)."""
    problems = []
    for error in validator(schema).iter_errors(instance):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.path)
        problems.append(f"{where.removeprefix('.') or 'the body'}: {error.message}")
    return problems
