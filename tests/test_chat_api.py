"""`POST /api/v1/chat` end to end on the real pipeline: routing, persistence, sessions, errors."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import ChatMessage, ChatSession, Document, Feedback
from app.services.fusion import SIGNALS


@pytest.fixture
def chat(chat_app):
    client = chat_app.test_client()

    def send(message, **extra):
        return client.post("/api/v1/chat", json={"message": message, **extra})

    return send


def _faq(chat_app, doc_id: str) -> Document:
    with chat_app.app_context():
        doc = db.session.scalar(select(Document).where(Document.doc_id == doc_id))
        db.session.expunge(doc)
        return doc


def test_a_faq_question_is_answered_from_that_faq(chat, chat_app):
    faq = _faq(chat_app, "M-001")
    body = chat(faq.question).get_json()
    assert body["route"] == "retrieval" and body["decision"] == "answer"
    assert body["source"] == {"doc_id": "M-001", "question": faq.question, "category": faq.category}
    assert body["answer"] == faq.answer
    assert body["candidates"][0]["doc_id"] == "M-001"
    assert body["confidence"] >= chat_app.config["ANSWER_THRESHOLD"]
    scores = [c["score"] for c in body["candidates"]]
    assert scores == sorted(scores, reverse=True)
    # every signal speaks for the right FAQ, and every stage is timed
    assert set(body["candidates"][0]["signals"]) == set(SIGNALS)
    assert {"keywords", "encode", "search", "bm25", "chars", "graph", "fusion", "database"} <= set(body["timings_ms"])


def test_small_talk_falls_back_to_generation_with_candidates(chat):
    body = chat("안녕 오늘 너무 심심하다 ㅎㅎ").get_json()
    assert body["route"] == "generation" and body["source"] is None
    assert body["answer"].strip()
    assert body["candidates"], "the closest FAQs are still offered"


def test_messages_and_feedback_are_stored(chat, chat_app):
    first = chat("이사화물 면세 되나요?").get_json()
    second = chat("고마워요", session_id=first["session_id"]).get_json()
    assert second["session_id"] == first["session_id"]
    client = chat_app.test_client()
    response = client.post("/api/v1/feedback", json={"message_id": first["message_id"], "helpful": False,
                                                     "comment": "다른 답이 필요해요"})
    assert response.status_code == 201
    with chat_app.app_context():
        session = db.session.scalar(select(ChatSession).where(ChatSession.session_id == first["session_id"]))
        texts = [(m.user_text, m.route) for m in session.messages]
        assert texts == [("이사화물 면세 되나요?", first["route"]), ("고마워요", second["route"])]
        stored = db.session.scalar(select(ChatMessage).where(ChatMessage.message_id == first["message_id"]))
        assert stored.doc_id == (first["source"] or {}).get("doc_id")
        assert stored.confidence == pytest.approx(first["confidence"], abs=1e-3)
        assert stored.latency_ms > 0 and stored.index_version == first["index_version"]
        feedback = db.session.scalar(select(Feedback).where(Feedback.message_pk == stored.id))
        assert (feedback.helpful, feedback.comment) == (False, "다른 답이 필요해요")


def test_unknown_session_id_starts_that_session(chat):
    body = chat("면세한도 얼마예요?", session_id="widget-session-0001").get_json()
    assert body["session_id"] == "widget-session-0001"


def test_top_k_limits_candidates(chat):
    assert len(chat("택배 통관 조회", top_k=2).get_json()["candidates"]) == 2


@pytest.mark.parametrize("body, fragment", [
    ({}, "message"),
    ({"message": ""}, "message"),
    ({"message": "   \n\t "}, "message"),
    ({"message": 42}, "message"),
    ({"message": "면세", "top_k": "ten"}, "top_k"),
    ({"message": "면세", "top_k": 0}, "top_k"),
    ({"message": "면세", "session_id": "bad id!"}, "session_id"),
    ({"message": "면세", "extra": 1}, "extra"),
])
def test_invalid_requests_are_400(chat_app, body, fragment):
    response = chat_app.test_client().post("/api/v1/chat", json=body)
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]["message"]


def test_too_long_message_is_400(chat_app):
    text = "가" * (chat_app.config["MAX_MESSAGE_CHARS"] + 1)
    response = chat_app.test_client().post("/api/v1/chat", json={"message": text})
    assert response.status_code == 400 and "message" in response.get_json()["error"]["message"]


def test_feedback_for_unknown_message_is_404(chat_app):
    response = chat_app.test_client().post("/api/v1/feedback", json={"message_id": "nope", "helpful": True})
    assert response.status_code == 404


def test_chat_without_an_index_is_503(client):
    response = client.post("/api/v1/chat", json={"message": "면세한도"})
    assert response.status_code == 503 and response.get_json()["error"]["code"] == "service_unavailable"
