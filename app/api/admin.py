"""Admin endpoints (`/api/v1/admin/...`): need `Authorization: Bearer <ADMIN_TOKEN>`.

Anything over HTTP that reads private data or changes server state, other than chatting and giving
feedback, lives here. With ADMIN_TOKEN unset the admin endpoints are disabled (403).
"""
from __future__ import annotations

import hmac

from flask import current_app, request

from app.api import bp
from app.commands.feedback import recent_feedback
from app.errors import ApiError

MAX_LIST = 200


def require_admin() -> None:
    token = current_app.config["ADMIN_TOKEN"]
    if not token:
        raise ApiError(403, "admin endpoints are disabled: set ADMIN_TOKEN")
    supplied = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(supplied.encode(), token.encode()):
        raise ApiError(401, "admin token required: Authorization: Bearer <ADMIN_TOKEN>")


@bp.get("/admin/feedback")
def list_feedback():
    """Recent feedback with the message it rates (`?unhelpful=1`, `?limit=N`)."""
    require_admin()
    limit = min(request.args.get("limit", 50, type=int) or 50, MAX_LIST)
    rows = recent_feedback(request.args.get("unhelpful") in ("1", "true"), limit)
    return {"feedback": [{
        "feedback_id": f.id, "helpful": f.helpful, "comment": f.comment, "created_at": f.created_at.isoformat(),
        "message_id": f.message.message_id, "message": f.message.user_text, "reply": f.message.reply,
        "route": f.message.route, "doc_id": f.message.doc_id, "confidence": f.message.confidence,
    } for f in rows]}


@bp.post("/admin/index/reload")
def reload_index():
    """Make this worker look for a newer index version now (it also does so by itself)."""
    require_admin()
    holder = current_app.extensions["index"]
    holder.wait_until_current(timeout=60)
    return {"index_version": holder.version}
