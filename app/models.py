"""Database schema (SQLAlchemy 2 typed models). `doc_id` is the FAQ's stable external id everywhere."""
from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TimestampMixin:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Document(TimestampMixin, db.Model):
    """One FAQ entry (question + official answer)."""

    __tablename__ = "documents"
    id: Mapped[int] = mapped_column(primary_key=True)
    doc_id: Mapped[str] = mapped_column(String(32), unique=True, index=True)
    category: Mapped[str] = mapped_column(String(64), index=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    paraphrases: Mapped[list["Paraphrase"]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="Paraphrase.position"
    )
    labelled_messages: Mapped[list["LabelledMessage"]] = relationship(
        back_populates="document", cascade="all, delete-orphan", order_by="LabelledMessage.id"
    )


class Paraphrase(db.Model):
    """An alternative way of asking a document's question, with its keyword labels."""

    __tablename__ = "paraphrases"
    __table_args__ = (UniqueConstraint("document_id", "position"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    keywords: Mapped[list[str]] = mapped_column(JSON, default=list)
    document: Mapped[Document] = relationship(back_populates="paraphrases")


class LabelledMessage(db.Model):
    """A message written the way users write (typos, slang, a story around the question), labelled
    with the FAQ that answers it. Unlike paraphrases these carry no keyword labels; retrieval indexes
    them and the text-CLIP trainer learns from them (see `data/messages/README.md`)."""

    __tablename__ = "labelled_messages"
    __table_args__ = (UniqueConstraint("document_id", "text"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("documents.id", ondelete="CASCADE"), index=True)
    text: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    document: Mapped[Document] = relationship(back_populates="labelled_messages")


class SynonymGroup(db.Model):
    """Terms that mean the same thing (이음동의어); `key` is the sorted terms joined, for upserts."""

    __tablename__ = "synonym_groups"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(512), unique=True)
    partition: Mapped[str] = mapped_column(String(8))
    terms: Mapped[list[str]] = mapped_column(JSON)


class ChatSession(TimestampMixin, db.Model):
    __tablename__ = "chat_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    messages: Mapped[list["ChatMessage"]] = relationship(back_populates="session", order_by="ChatMessage.id")


class ChatMessage(db.Model):
    """One user message and the reply the service gave."""

    __tablename__ = "chat_messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    session_pk: Mapped[int] = mapped_column(ForeignKey("chat_sessions.id", ondelete="CASCADE"), index=True)
    user_text: Mapped[str] = mapped_column(Text)
    # The message as retrieval saw it (with context from earlier turns folded in, if any).
    resolved_text: Mapped[str] = mapped_column(Text, default="")
    reply: Mapped[str] = mapped_column(Text)
    route: Mapped[str] = mapped_column(String(16))
    doc_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    confidence: Mapped[float] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    index_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    session: Mapped[ChatSession] = relationship(back_populates="messages")
    feedback: Mapped[list["Feedback"]] = relationship(back_populates="message", order_by="Feedback.id")


class Feedback(db.Model):
    __tablename__ = "feedback"
    id: Mapped[int] = mapped_column(primary_key=True)
    message_pk: Mapped[int] = mapped_column(ForeignKey("chat_messages.id", ondelete="CASCADE"), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    comment: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    message: Mapped[ChatMessage] = relationship(back_populates="feedback")


class IndexBuild(db.Model):
    """One run of `flask index build`: building -> ready | failed."""

    __tablename__ = "index_builds"
    id: Mapped[int] = mapped_column(primary_key=True)
    version: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="building")
    path: Mapped[str] = mapped_column(Text)
    documents: Mapped[int] = mapped_column(Integer, default=0)
    vectors: Mapped[int] = mapped_column(Integer, default=0)
    graph_nodes: Mapped[int] = mapped_column(Integer, default=0)
    graph_edges: Mapped[int] = mapped_column(Integer, default=0)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
