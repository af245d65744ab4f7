"""`flask feedback` lists rated replies newest first, so unhelpful answers can be reviewed."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from app.extensions import db
from app.models import ChatMessage, ChatSession, Feedback

START = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)


@pytest.fixture
def rated_messages(app):
    """Three rated replies: an FAQ answer (helpful), a wrong FAQ answer and a small-talk reply (unhelpful)."""
    rows = [
        ("면세한도 얼마예요?", "1인당 미화 800달러까지...", "retrieval", "T-001", 0.93, True, None),
        ("직구 관세 계산", "이사화물은 ...", "retrieval", "M-004", 0.41, False, "엉뚱한 답이에요"),
        ("배고파", "맛있는 거 드세요", "generation", None, 0.05, False, None),
    ]
    with app.app_context():
        session = ChatSession(session_id="s" * 16)
        for minutes, (text, reply, route, doc_id, confidence, helpful, comment) in enumerate(rows):
            message = ChatMessage(message_id=f"m{minutes}", session=session, user_text=text, reply=reply,
                                  route=route, doc_id=doc_id, confidence=confidence, latency_ms=12.0)
            db.session.add(Feedback(message=message, helpful=helpful, comment=comment,
                                    created_at=START + timedelta(minutes=minutes)))
        db.session.commit()


def test_lists_all_feedback_newest_first(runner, rated_messages):
    result = runner.invoke(args=["feedback"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.index("배고파") < out.index("직구 관세 계산") < out.index("면세한도 얼마예요?")
    assert "route:      retrieval  doc_id=M-004  confidence=0.410" in out
    assert "comment:    엉뚱한 답이에요" in out
    assert out.splitlines()[-1] == "showed 3 feedback entries, newest first (3 in the database, 2 unhelpful)"


def test_unhelpful_only_with_limit(runner, rated_messages):
    result = runner.invoke(args=["feedback", "--unhelpful", "--limit", "1"])
    assert result.exit_code == 0, result.output
    assert "배고파" in result.output and "route:      generation  doc_id=-" in result.output
    assert "직구 관세 계산" not in result.output and "면세한도" not in result.output
    assert result.output.splitlines()[-1].startswith("showed 1 unhelpful feedback entries")


def test_rejects_a_non_positive_limit(runner):
    result = runner.invoke(args=["feedback", "--limit", "0"])
    assert result.exit_code != 0 and "--limit" in result.output
