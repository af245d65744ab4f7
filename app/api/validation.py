"""Request validation driven by JSON Schemas: the same schemas describe the API in the OpenAPI
document (`app/api/openapi.py`), so the description cannot drift from what the endpoints accept."""
from __future__ import annotations

from typing import Any

from flask import request
from jsonschema import Draft202012Validator

from app.errors import ApiError

# Every request schema by endpoint name; filled by `json_body` users at import time.
REQUEST_SCHEMAS: dict[str, dict] = {}


def _describe(error) -> str:
    where = ".".join(str(p) for p in error.absolute_path)
    if error.validator == "required":
        return f"missing field: {error.message.split(chr(39))[1]}"
    if error.validator == "additionalProperties":
        return error.message
    return f"{where or 'body'}: {error.message}"


def json_body(schema: dict) -> dict[str, Any]:
    """The request's JSON object, validated against `schema`; raises ApiError 415/400 otherwise."""
    if not request.is_json:
        raise ApiError(415, "Content-Type must be application/json")
    body = request.get_json(silent=True)
    if body is None:
        raise ApiError(400, "request body is not valid JSON", "bad_json")
    errors = sorted(Draft202012Validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
    if errors:
        raise ApiError(400, _describe(errors[0]), "invalid_request")
    return body


def register_schema(name: str, schema: dict) -> dict:
    """Record `schema` under `name` for the OpenAPI document and return it unchanged."""
    REQUEST_SCHEMAS[name] = schema
    return schema


def text_field(max_chars: int) -> dict:
    """A required, non-blank string of at most `max_chars` characters."""
    return {"type": "string", "minLength": 1, "maxLength": max_chars, "pattern": r"\S"}
