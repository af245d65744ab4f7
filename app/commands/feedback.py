"""`flask feedback`: review what users said about the replies, newest first.

Each entry shows the user's message, the reply, how it was produced (route, doc_id, confidence) and the
user's comment, so unhelpful answers can be traced to the FAQ or the threshold that produced them.
"""
from __future__ import annotations

import click
from flask.cli import with_appcontext
from sqlalchemy import func, select
from sqlalchemy.orm import joinedload

from app.commands.groups import GROUPS
from app.extensions import db
from app.models import ChatMessage, Feedback

DEFAULT_LIMIT = 20
# Long replies are cut in the listing; the full text is in the database.
REPLY_PREVIEW_CHARS = 160


def _preview(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def recent_feedback(unhelpful_only: bool, limit: int) -> list[Feedback]:
    """Feedback rows with their chat message loaded, newest first."""
    query = (select(Feedback).options(joinedload(Feedback.message))
             .order_by(Feedback.created_at.desc(), Feedback.id.desc()).limit(limit))
    if unhelpful_only:
        query = query.where(Feedback.helpful.is_(False))
    return list(db.session.scalars(query))


def feedback_counts() -> tuple[int, int]:
    """(all feedback, unhelpful feedback) in the database."""
    total = db.session.scalar(select(func.count(Feedback.id))) or 0
    unhelpful = db.session.scalar(select(func.count(Feedback.id)).where(Feedback.helpful.is_(False))) or 0
    return total, unhelpful


def format_entry(feedback: Feedback) -> list[str]:
    message: ChatMessage = feedback.message
    verdict = "helpful" if feedback.helpful else "UNHELPFUL"
    return [
        f"[{feedback.created_at:%Y-%m-%d %H:%M:%S}] {verdict}  message_id={message.message_id}",
        f"  message:    {message.user_text}",
        f"  reply:      {_preview(message.reply, REPLY_PREVIEW_CHARS)}",
        f"  route:      {message.route}  doc_id={message.doc_id or '-'}  confidence={message.confidence:.3f}",
        f"  comment:    {feedback.comment or '-'}",
    ]


@click.command("feedback")
@click.option("--unhelpful", is_flag=True, help="Only feedback that marked the reply as not helpful.")
@click.option("--limit", type=click.IntRange(min=1), default=DEFAULT_LIMIT, show_default=True,
              help="How many entries to list.")
@with_appcontext
def feedback_command(unhelpful: bool, limit: int) -> None:
    """List user feedback on chat replies, newest first."""
    entries = recent_feedback(unhelpful, limit)
    for feedback in entries:
        click.echo("\n".join(format_entry(feedback)))
    total, unhelpful_total = feedback_counts()
    shown = "unhelpful " if unhelpful else ""
    click.echo(f"showed {len(entries)} {shown}feedback entries, newest first "
               f"({total} in the database, {unhelpful_total} unhelpful)")


GROUPS.append(feedback_command)
