"""BM25 over kiwipiepy morphemes: the lexical baseline and a signal for hybrid fusion.

A document is its question, its paraphrases, its labelled user messages and its answer, as one bag of
morphemes. Measured top-1 on the bundled FAQ alone (the baseline): 0.80 on dev_queries.jsonl, 0.29 on
dev_queries_hard.jsonl (data/README.md: 0.78 / 0.21 with content morphemes only), 0.55 on held-out
paraphrases with the index built without them; with the labelled messages 0.93 / 0.63. Expanding queries
with the synonym groups was measured too (+4 points on held-out paraphrases, +0-1 on the dev sets)
and left out: the knowledge graph carries the synonyms. Scoring is bm25s's; tokenisation is
`kg.normalize.lexical_tokens`, so the index and the queries see text the same way.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import bm25s
import numpy as np

from kg.normalize import lexical_tokens
from trainers.data import FaqRecord

DOC_IDS_FILE = "doc_ids.json"


def document_text(record: FaqRecord) -> str:
    """Everything a document says about itself: question, paraphrases, labelled messages, answer."""
    return "\n".join([record.question, *(p.text for p in record.paraphrases), *record.labelled_messages,
                      record.answer])


class Bm25Index:
    """A bm25s index whose rows are FAQ documents, addressed by doc_id."""

    def __init__(self, retriever: bm25s.BM25, doc_ids: list[str]):
        self.retriever = retriever
        self.doc_ids = doc_ids

    @classmethod
    def build(cls, records: Iterable[FaqRecord]) -> "Bm25Index":
        records = list(records)
        if not records:
            raise ValueError("cannot build a BM25 index from no documents")
        retriever = bm25s.BM25()
        retriever.index([lexical_tokens(document_text(r)) for r in records], show_progress=False)
        return cls(retriever, [r.doc_id for r in records])

    def save(self, directory: Path) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.retriever.save(str(directory), show_progress=False)
        (directory / DOC_IDS_FILE).write_text(json.dumps(self.doc_ids, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "Bm25Index":
        directory = Path(directory)
        doc_ids = json.loads((directory / DOC_IDS_FILE).read_text(encoding="utf-8"))
        return cls(bm25s.BM25.load(str(directory), show_progress=False), doc_ids)

    def scores(self, text: str) -> np.ndarray:
        """BM25 score of every document for `text` (morphemes the corpus never saw score nothing)."""
        tokens = lexical_tokens(text)
        if not tokens:
            return np.zeros(len(self.doc_ids), dtype=np.float32)
        return self.retriever.get_scores(tokens)

    def search(self, text: str, k: int) -> list[tuple[str, float]]:
        """The k best documents for `text`, best first, as (doc_id, score); documents scoring 0 are left out."""
        scores = self.scores(text)
        k = min(k, len(scores))
        if k <= 0:
            return []
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(self.doc_ids[i], float(scores[i])) for i in top if scores[i] > 0]
