"""Ashby's published OpenAPI document (`../shared/ashby/`), for validating what crosses the wire."""

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

REPO_ROOT = Path(__file__).resolve().parent.parent
SPEC_PATH = REPO_ROOT.parent / "shared" / "ashby" / "ashby-assessment-openapi.json"


@cache
def ashby_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    return spec


def request_schema(path: str) -> dict[str, Any]:
    schema: dict[str, Any] = ashby_spec()["paths"][path]["post"]["requestBody"]["content"][
        "application/json"
    ]["schema"]
    return schema


def response_schema(path: str, status: str = "200") -> dict[str, Any]:
    schema: dict[str, Any] = ashby_spec()["paths"][path]["post"]["responses"][status]["content"][
        "application/json"
    ]["schema"]
    return schema


def validate(instance: object, schema: dict[str, Any]) -> None:
    jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    ).validate(instance)
