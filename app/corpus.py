"""The FAQ corpus as read from the database, in the plain records trainers and builders take."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.extensions import db
from app.models import Document, SynonymGroup
from trainers.data import FaqRecord, Paraphrase


def faq_records() -> list[FaqRecord]:
    """Every FAQ document with its paraphrases and labelled messages, ordered by doc_id."""
    docs = db.session.scalars(
        select(Document)
        .options(selectinload(Document.paraphrases), selectinload(Document.labelled_messages))
        .order_by(Document.doc_id)
    ).all()
    return [
        FaqRecord(
            doc_id=d.doc_id,
            category=d.category,
            question=d.question,
            answer=d.answer,
            keywords=tuple(d.keywords or ()),
            paraphrases=tuple(Paraphrase(p.text, tuple(p.keywords or ())) for p in d.paraphrases),
            labelled_messages=tuple(m.text for m in d.labelled_messages),
        )
        for d in docs
    ]


def synonym_groups() -> list[list[str]]:
    return [list(g.terms) for g in db.session.scalars(select(SynonymGroup).order_by(SynonymGroup.id))]
