"""The OpenAPI description is true: every documented route exists, every API route is documented,
request schemas are the ones the endpoints validate with, responses match the response schemas."""
from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate

from app.api.openapi import ERROR_SCHEMA, RESPONSE_SCHEMAS
from app.api.validation import REQUEST_SCHEMAS


@pytest.fixture
def document(chat_app):
    return chat_app.test_client().get("/api/v1/openapi.json").get_json()


def _api_rules(app) -> set[tuple[str, str]]:
    rules = set()
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") or rule.rule in ("/healthz", "/readyz"):
            rules |= {(rule.rule, m.lower()) for m in rule.methods - {"HEAD", "OPTIONS"}}
    return rules


def test_document_is_valid_openapi(document):
    validate(document)


def test_documented_routes_are_exactly_the_app_routes(chat_app, document):
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == _api_rules(chat_app)


def test_request_schemas_are_the_validators(chat_app, document):
    with chat_app.app_context():
        for name, schema in REQUEST_SCHEMAS.items():
            expected = schema(chat_app.config) if callable(schema) else schema
            body = document["paths"][f"/api/v1/{name}"]["post"]["requestBody"]["content"]["application/json"]
            assert body["schema"] == expected


def test_invalid_bodies_get_the_documented_error_shape(chat_app, document):
    client = chat_app.test_client()
    for path, ops in document["paths"].items():
        if "post" in ops:
            response = client.post(path, json={"unexpected": True})
            expected = (401, 403) if "security" in ops["post"] else (400, 503)
            assert response.status_code in expected, path
            Draft202012Validator(ERROR_SCHEMA).validate(response.get_json())


def test_chat_and_feedback_responses_match_their_schemas(chat_app):
    client = chat_app.test_client()
    chat = client.post("/api/v1/chat", json={"message": "해외직구 물품 통관 얼마나 걸려요?"}).get_json()
    Draft202012Validator(RESPONSE_SCHEMAS["chat"]).validate(chat)
    feedback = client.post("/api/v1/feedback", json={"message_id": chat["message_id"], "helpful": True})
    Draft202012Validator(RESPONSE_SCHEMAS["feedback"]).validate(feedback.get_json())
