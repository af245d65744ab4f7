"""Malformed requests get JSON errors with the right status: never HTML, never a stack trace."""
from __future__ import annotations

import pytest


def _assert_error(response, status: int, code: str | None = None):
    assert response.status_code == status
    assert response.is_json, response.data[:200]
    error = response.get_json()["error"]
    assert set(error) == {"code", "message"} and error["message"]
    if code:
        assert error["code"] == code


def test_healthz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}


def test_readyz_reports_database(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["database"] == "ok"


def test_unknown_route_is_json_404(client):
    _assert_error(client.get("/api/v1/nope"), 404, "not_found")


def test_wrong_method_is_json_405_with_allow_header(client):
    response = client.get("/api/v1/feedback")
    _assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_bad_json_is_400(client):
    response = client.post("/api/v1/feedback", data="{oops", content_type="application/json")
    _assert_error(response, 400, "bad_json")


def test_wrong_content_type_is_415(client):
    _assert_error(client.post("/api/v1/feedback", data="message_id=1", content_type="text/plain"), 415)


def test_oversize_body_is_413(app, client):
    body = '{"comment": "' + "가" * app.config["MAX_CONTENT_LENGTH"] + '"}'
    _assert_error(client.post("/api/v1/feedback", data=body, content_type="application/json"), 413)


@pytest.mark.parametrize("body, fragment", [
    ({"helpful": True}, "message_id"),
    ({"message_id": "m1"}, "helpful"),
    ({"message_id": "m1", "helpful": "yes"}, "helpful"),
    ([1, 2], "body"),
])
def test_invalid_fields_are_400_naming_the_field(client, body, fragment):
    response = client.post("/api/v1/feedback", json=body)
    _assert_error(response, 400, "invalid_request")
    assert fragment in response.get_json()["error"]["message"]


def test_unknown_message_feedback_is_404(client):
    _assert_error(client.post("/api/v1/feedback", json={"message_id": "missing", "helpful": True}), 404)


def test_unexpected_exception_is_json_500_without_trace(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    _assert_error(response, 500, "internal_error")
    assert b"secret internals" not in response.data and b"Traceback" not in response.data


def test_cors_allows_only_configured_origins(tmp_path):
    from app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "CORS_ORIGINS": ["https://shop.example"],
                      "INDEX_DIR": tmp_path / "index"})
    client = app.test_client()
    preflight = client.options("/api/v1/chat", headers={"Origin": "https://shop.example",
                                                        "Access-Control-Request-Method": "POST"})
    assert preflight.headers["Access-Control-Allow-Origin"] == "https://shop.example"
    assert "Content-Type" in preflight.headers["Access-Control-Allow-Headers"]
    other = client.options("/api/v1/chat", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
