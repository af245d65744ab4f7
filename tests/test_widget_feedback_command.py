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


def _rated(session, message_id, text, doc_id, helpful_votes, route="retrieval", resolved=None):
    message = ChatMessage(message_id=message_id, session=session, user_text=text, reply="…", route=route,
                          doc_id=doc_id, confidence=0.8, latency_ms=10.0,
                          resolved_text=text if resolved is None else resolved)
    for helpful in helpful_votes:
        db.session.add(Feedback(message=message, helpful=helpful))


def test_harvest_feedback_adds_helpful_answers_as_labelled_messages(app, runner):
    from app.models import Document, LabelledMessage

    assert runner.invoke(args=["data", "load"]).exit_code == 0
    with app.app_context():
        session = ChatSession(session_id="h" * 16)
        _rated(session, "ok", "팔백 넘게 샀으면 어케 돼요", "T-001", [True])
        _rated(session, "twice", "직구 150불 넘으면 세금?", "D-001", [True, True])
        _rated(session, "disputed", "이사짐 세금", "M-001", [True, False])
        _rated(session, "unhelpful", "관세 환급 언제", "B-031", [False])
        _rated(session, "smalltalk", "고마워요", None, [True], route="generation")
        _rated(session, "followup", "그럼 술은요?", "T-017", [True], resolved="면세한도 그럼 술은요?")
        db.session.commit()
        before = db.session.query(LabelledMessage).count()

    dry = runner.invoke(args=["data", "harvest-feedback", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "would add 2 labelled messages" in dry.output
    with app.app_context():
        assert db.session.query(LabelledMessage).count() == before

    result = runner.invoke(args=["data", "harvest-feedback"])
    assert result.exit_code == 0, result.output
    assert "T-001  팔백 넘게 샀으면 어케 돼요" in result.output and "added 2 labelled messages" in result.output
    with app.app_context():
        added = db.session.query(LabelledMessage).filter_by(source="feedback").all()
        assert sorted((m.document.doc_id, m.text) for m in added) == [
            ("D-001", "직구 150불 넘으면 세금?"), ("T-001", "팔백 넘게 샀으면 어케 돼요")]
        assert db.session.query(Document).count() == 300

    again = runner.invoke(args=["data", "harvest-feedback"])
    assert "added 0 labelled messages from helpful feedback (2 already known" in again.output
