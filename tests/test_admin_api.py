"""Admin endpoints need the admin token; with none configured they are disabled."""
from __future__ import annotations

import pytest

from app import create_app
from app.extensions import db
from app.models import ChatMessage, ChatSession, Feedback
from tests.conftest import DATA_DIR

TOKEN = "s3cret-admin-token"


@pytest.fixture
def admin_app(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.db'}", "ADMIN_TOKEN": TOKEN,
                      "DATA_DIR": DATA_DIR, "INDEX_DIR": tmp_path / "index"})
    with app.app_context():
        db.create_all()
        message = ChatMessage(message_id="m1", session=ChatSession(session_id="s" * 8), user_text="면세?",
                              reply="800달러", route="retrieval", doc_id="T-001", confidence=0.9, latency_ms=5)
        db.session.add(Feedback(message=message, helpful=False, comment="틀렸어요"))
        db.session.commit()
    return app


def test_disabled_without_a_configured_token(client):
    assert client.get("/api/v1/admin/feedback").status_code == 403


@pytest.mark.parametrize("header", [None, "Bearer wrong", TOKEN])
def test_wrong_or_missing_token_is_401(admin_app, header):
    headers = {"Authorization": header} if header else {}
    if header == TOKEN:
        headers = {"Authorization": "Basic " + TOKEN}
    assert admin_app.test_client().get("/api/v1/admin/feedback", headers=headers).status_code == 401


def test_lists_feedback_with_the_token(admin_app):
    response = admin_app.test_client().get("/api/v1/admin/feedback?unhelpful=1",
                                           headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    [entry] = response.get_json()["feedback"]
    assert (entry["message_id"], entry["helpful"], entry["comment"], entry["doc_id"]) == ("m1", False, "틀렸어요", "T-001")
