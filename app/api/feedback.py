"""`POST /api/v1/feedback`: was this reply helpful? Stored against the chat message it rates."""
from __future__ import annotations

from sqlalchemy import select

from app.api import bp
from app.api.validation import json_body, register_schema
from app.errors import ApiError
from app.extensions import db
from app.models import ChatMessage, Feedback

MAX_COMMENT_CHARS = 2000

FEEDBACK_SCHEMA = register_schema("feedback", {
    "type": "object",
    "required": ["message_id", "helpful"],
    "properties": {
        "message_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "helpful": {"type": "boolean"},
        "comment": {"type": ["string", "null"], "maxLength": MAX_COMMENT_CHARS},
    },
    "additionalProperties": False,
})


@bp.post("/feedback")
def create_feedback():
    body = json_body(FEEDBACK_SCHEMA)
    message = db.session.scalar(select(ChatMessage).where(ChatMessage.message_id == body["message_id"]))
    if message is None:
        raise ApiError(404, f"unknown message_id: {body['message_id']}")
    comment = (body.get("comment") or "").strip() or None
    feedback = Feedback(message=message, helpful=body["helpful"], comment=comment)
    db.session.add(feedback)
    db.session.commit()
    return {"feedback_id": feedback.id, "message_id": message.message_id, "helpful": feedback.helpful,
            "comment": comment}, 201
