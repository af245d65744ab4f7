"""Every error leaves the service as JSON `{"error": {"code", "message"}}` with the right status.

Raise `ApiError` (or a werkzeug HTTPException) anywhere; the handlers registered here turn it, and
any unexpected exception, into that shape. Never an HTML page, never a stack trace.
"""
from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# Stable machine-readable codes per status, for errors raised by Flask/werkzeug itself.
STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "unprocessable_entity",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class ApiError(Exception):
    """An error with an HTTP status, a stable code and a message meant for the client."""

    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or STATUS_CODES.get(status, "error")
        self.message = message


def error_response(status: int, code: str, message: str):
    return jsonify({"error": {"code": code, "message": message}}), status


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(err: ApiError):
        return error_response(err.status, err.code, err.message)

    @app.errorhandler(HTTPException)
    def _http_error(err: HTTPException):
        status = err.code or 500
        body, _ = error_response(status, STATUS_CODES.get(status, "error"), err.description or err.name)
        allow = dict(err.get_headers()).get("Allow")  # 405 must say which methods are allowed
        if allow:
            body.headers["Allow"] = allow
        return body, status

    @app.errorhandler(Exception)
    def _unexpected(err: Exception):
        log.exception("unhandled error")
        return error_response(500, "internal_error", "internal server error")
