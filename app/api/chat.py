"""`POST /api/v1/chat`: answer a message, remember the conversation."""
from __future__ import annotations

import time
import uuid

from flask import current_app
from sqlalchemy import select

from app.api import bp
from app.api.validation import json_body, register_schema, text_field
from app.extensions import db
from app.models import ChatMessage, ChatSession
from app.services.chat import RoutingSettings, Turn, answer_turn
from app.services.retrieval import fallback_reply, keyword_function, retriever_for_request

SESSION_ID_PATTERN = r"^[A-Za-z0-9_-]{8,64}$"


def chat_schema(config) -> dict:
    """The request schema; its limits come from the configuration."""
    return {
        "type": "object",
        "required": ["message"],
        "properties": {
            "message": text_field(config["MAX_MESSAGE_CHARS"]),
            "session_id": {"type": ["string", "null"], "pattern": SESSION_ID_PATTERN},
            "top_k": {"type": "integer", "minimum": 1, "maximum": config["RETRIEVAL_MAX_TOP_K"]},
        },
        "additionalProperties": False,
    }


register_schema("chat", chat_schema)


def _session(session_id: str | None) -> ChatSession:
    """The caller's session; an unknown id starts a new session under that id (the widget keeps its
    id across server restarts), no id starts a fresh one."""
    if session_id:
        found = db.session.scalar(select(ChatSession).where(ChatSession.session_id == session_id))
        if found is not None:
            return found
    session = ChatSession(session_id=session_id or uuid.uuid4().hex)
    db.session.add(session)
    return session


def _previous_text(session: ChatSession) -> str | None:
    if session.id is None:
        return None
    last = db.session.scalar(select(ChatMessage).where(ChatMessage.session_pk == session.id)
                             .order_by(ChatMessage.id.desc()).limit(1))
    return last.user_text if last is not None else None


def _candidates(turn: Turn, documents: dict, top_k: int) -> list[dict]:
    out = []
    for cand in turn.retrieval.candidates[:top_k]:
        doc = documents[cand.doc_id]
        out.append({"doc_id": doc.doc_id, "question": doc.question, "category": doc.category,
                    "score": round(cand.probability, 4), "rrf": round(cand.rrf, 5),
                    "signals": {k: round(v, 4) for k, v in cand.scores.items()},
                    "ranks": cand.ranks})
    return out


@bp.post("/chat")
def chat():
    started = time.perf_counter()
    body = json_body(chat_schema(current_app.config))
    config = current_app.config
    top_k = body.get("top_k") or config["RETRIEVAL_TOP_K"]
    settings = RoutingSettings.from_config(config)

    session = _session(body.get("session_id"))
    retriever = retriever_for_request(keyword_function())
    turn = answer_turn(retriever, body["message"], _previous_text(session), settings, fallback_reply)

    t = time.perf_counter()
    message = ChatMessage(
        message_id=uuid.uuid4().hex, session=session, user_text=body["message"], resolved_text=turn.resolved_text,
        reply=turn.answer, route=turn.route, doc_id=turn.source.doc_id if turn.source else None,
        confidence=turn.retrieval.confidence, latency_ms=0.0, index_version=retriever.index.version,
    )
    db.session.add(message)
    db.session.flush()
    timings = {**turn.retrieval.timings_ms, "database": (time.perf_counter() - t) * 1000}
    message.latency_ms = (time.perf_counter() - started) * 1000
    db.session.commit()

    return {
        "session_id": session.session_id,
        "message_id": message.message_id,
        "route": turn.route,
        "decision": turn.decision,
        "answer": turn.answer,
        "confidence": round(turn.retrieval.confidence, 4),
        "keywords": turn.retrieval.keywords,
        "source": ({"doc_id": turn.source.doc_id, "question": turn.source.question,
                    "category": turn.source.category} if turn.source else None),
        "candidates": _candidates(turn, retriever.index.documents, top_k),
        "used_context": turn.used_context,
        "index_version": retriever.index.version,
        "latency_ms": round(message.latency_ms, 1),
        "timings_ms": {k: round(v, 2) for k, v in timings.items()},
    }
