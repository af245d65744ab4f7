"""The FAQ corpus as read from the database, in the plain records trainers and builders take."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import Document, SynonymGroup
from trainers.data import FaqRecord, Paraphrase


def faq_records() -> list[FaqRecord]:
    """Every FAQ document with its paraphrases, ordered by doc_id."""
    docs = db.session.scalars(
        select(Document).options(selectinload(Document.paraphrases)).order_by(Document.doc_id)
    ).all()
    return [
        FaqRecord(
            doc_id=d.doc_id,
            category=d.category,
            question=d.question,
            answer=d.answer,
            keywords=tuple(d.keywords or ()),
            paraphrases=tuple(Paraphrase(p.text, tuple(p.keywords or ())) for p in d.paraphrases),
        )
        for d in docs
    ]


def synonym_groups() -> list[list[str]]:
    return [list(g.terms) for g in db.session.scalars(select(SynonymGroup).order_by(SynonymGroup.id))]
