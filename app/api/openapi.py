"""`GET /api/v1/openapi.json`: the API described in OpenAPI 3.1.

Request bodies are the very JSON Schemas the endpoints validate with (`REQUEST_SCHEMAS`), so the
description cannot drift from what is accepted; response schemas are written here and checked
against real responses by the tests.
"""
from __future__ import annotations

from flask import current_app

from app.api import bp
from app.api.validation import REQUEST_SCHEMAS

_STR = {"type": "string"}
_NUM = {"type": "number"}
ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": _STR, "message": _STR}}},
}
CANDIDATE_SCHEMA = {
    "type": "object", "required": ["doc_id", "question", "score"],
    "properties": {"doc_id": _STR, "question": _STR, "category": _STR, "score": _NUM, "rrf": _NUM,
                   "signals": {"type": "object", "additionalProperties": _NUM},
                   "ranks": {"type": "object", "additionalProperties": {"type": "integer"}}},
}
RESPONSE_SCHEMAS: dict[str, dict] = {
    "chat": {
        "type": "object",
        "required": ["session_id", "message_id", "route", "answer", "confidence", "keywords", "source",
                     "candidates", "latency_ms"],
        "properties": {
            "session_id": _STR, "message_id": _STR,
            "route": {"enum": ["retrieval", "generation"]},
            "decision": {"enum": ["answer", "suggest", "fallback"]},
            "answer": _STR, "confidence": {"type": "number", "minimum": 0, "maximum": 1},
            "keywords": {"type": "array", "items": _STR},
            "source": {"oneOf": [{"type": "null"}, {"type": "object", "required": ["doc_id", "question", "category"],
                                                    "properties": {"doc_id": _STR, "question": _STR, "category": _STR}}]},
            "candidates": {"type": "array", "items": CANDIDATE_SCHEMA},
            "used_context": {"type": "boolean"}, "index_version": _STR,
            "latency_ms": _NUM, "timings_ms": {"type": "object", "additionalProperties": _NUM},
        },
    },
    "feedback": {
        "type": "object", "required": ["feedback_id", "message_id", "helpful"],
        "properties": {"feedback_id": {"type": "integer"}, "message_id": _STR, "helpful": {"type": "boolean"},
                       "comment": {"type": ["string", "null"]}},
    },
    "keywords": {"type": "object", "required": ["keywords"],
                 "properties": {"keywords": {"type": "array", "items": _STR}}},
    "review": {
        "type": "object", "required": ["aspects"],
        "properties": {"aspects": {"type": "array", "items": {
            "type": "object", "required": ["aspect", "sentiment", "probability", "highlight"],
            "properties": {"aspect": _STR, "sentiment": {"type": "integer", "minimum": -2, "maximum": 2},
                           "probability": _NUM, "highlight": {"type": ["string", "null"]}}}}},
    },
    "coref": {
        "type": "object", "required": ["answer", "option", "probabilities"],
        "properties": {"answer": {"enum": ["A", "B", "C", "D"]}, "option": _STR,
                       "probabilities": {"type": "object", "required": ["A", "B", "C", "D"],
                                         "additionalProperties": _NUM}},
    },
}
OPERATIONS = {
    "chat": ("Answer a customs question (FAQ retrieval, or the small-talk fallback)", 200),
    "feedback": ("Rate a reply as helpful or not", 201),
    "keywords": ("Extract keywords from a question", 200),
    "review": ("Aspects, sentiment and highlights of a product review", 200),
    "coref": ("Which object a final demonstrative (이거/저거/그거) points to", 200),
}
ERROR_STATUSES = {"400": "Bad JSON or invalid fields", "413": "Body too large",
                  "415": "Content-Type is not application/json", "503": "Model or index not ready"}


def _request_schema(name: str) -> dict:
    schema = REQUEST_SCHEMAS[name]
    return schema(current_app.config) if callable(schema) else schema


def openapi_document() -> dict:
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths: dict = {}
    for name, (summary, status) in OPERATIONS.items():
        if name not in REQUEST_SCHEMAS:
            continue  # that endpoint's module is not installed in this build
        responses = {str(status): {"description": "OK", "content": {"application/json": {
            "schema": RESPONSE_SCHEMAS[name]}}}}
        responses.update({code: {"description": text, **error} for code, text in ERROR_STATUSES.items()})
        paths[f"/api/v1/{name}"] = {"post": {
            "operationId": name, "summary": summary,
            "requestBody": {"required": True, "content": {"application/json": {"schema": _request_schema(name)}}},
            "responses": responses,
        }}
    paths["/healthz"] = {"get": {"operationId": "healthz", "summary": "The process is up",
                                 "responses": {"200": {"description": "OK"}}}}
    paths["/readyz"] = {"get": {"operationId": "readyz", "summary": "Database, models and index loaded",
                                "responses": {"200": {"description": "Ready"}, "503": {"description": "Not ready", **error}}}}
    admin = {"security": [{"bearer": []}], "responses": {"200": {"description": "OK"},
                                                         "401": {"description": "Wrong token", **error},
                                                         "403": {"description": "Admin disabled", **error}}}
    paths["/api/v1/admin/feedback"] = {"get": {"operationId": "adminFeedback", "summary": "Recent feedback", **admin}}
    paths["/api/v1/admin/index/reload"] = {"post": {"operationId": "adminReload",
                                                    "summary": "Pick up the current index version now", **admin}}
    paths["/api/v1/openapi.json"] = {"get": {"operationId": "openapi", "summary": "This document",
                                             "responses": {"200": {"description": "OK"}}}}
    return {
        "openapi": "3.1.0",
        "info": {"title": "Korean customs chatbot API", "version": "1.0.0",
                 "description": "FAQ retrieval (knowledge graph + dense index) with a generative fallback."},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA},
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }


@bp.get("/openapi.json")
def openapi():
    return openapi_document()
