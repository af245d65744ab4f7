"""The retrieval pipeline, as MISSION.md describes it:

    message -> normalise -> keywords -> graph + BM25 + character n-gram + dense scores -> fusion
            -> calibrated confidence -> route (FAQ answer | hedged FAQ answer | generated fallback)

`RetrievalIndex` is one published index version (documents, FAISS vectors, knowledge graph, BM25,
character n-grams, calibrator), loaded read-only. `HybridRetriever` runs the pipeline up to the
confidence; the chat service (`app/services/chat.py`) decides the route and stores the conversation.
`flask eval retrieval` runs exactly the same `HybridRetriever`.
"""
from __future__ import annotations

import json
import re
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from app.services.fusion import SIGNALS, Calibrator, Candidate, merge_signals, rank

DOCUMENTS_FILE = "documents.json"
GRAPH_DIR = "graph"
BM25_DIR = "bm25"
CHARS_DIR = "chars"
DENSE_DIR = "dense"

_CONTROL = re.compile(r"[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202f\u2060\ufeff]")
_SPACES = re.compile(r"\s+")


def normalise_message(text: str) -> str:
    """NFC, control and zero-width characters removed, whitespace collapsed."""
    text = unicodedata.normalize("NFC", text)
    return _SPACES.sub(" ", _CONTROL.sub(" ", text)).strip()


@dataclass(frozen=True)
class DocInfo:
    doc_id: str
    category: str
    question: str
    answer: str


@dataclass(frozen=True)
class RetrievalSettings:
    # How many candidates each signal proposes before fusion.
    depth: int = 20
    # "learned" (calibrated logistic fusion) or "rrf" (reciprocal-rank fusion).
    fusion: str = "learned"
    signals: tuple[str, ...] = SIGNALS


@dataclass
class Retrieval:
    """What retrieval found for one message: ranked candidates and the confidence in the first."""

    text: str
    keywords: list[str]
    candidates: list[Candidate]
    confidence: float
    graph_explanations: dict[str, list] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def top(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


class RetrievalIndex:
    """One published index version: everything retrieval reads, loaded once, never written."""

    def __init__(self, version: str, path: Path, documents: dict[str, DocInfo], dense, bm25, chars, graph,
                 calibrator: Calibrator | None):
        self.version = version
        self.path = path
        self.documents = documents
        self.dense = dense
        self.bm25 = bm25
        self.chars = chars
        self.graph = graph
        self.calibrator = calibrator

    @classmethod
    def load(cls, path: Path, torch_threads: int = 1) -> "RetrievalIndex":
        from indexer.dense import DenseRetriever
        from kg.bm25 import Bm25Index
        from kg.chargrams import CharNgramIndex
        from kg.graph import KnowledgeGraph

        documents = {d["doc_id"]: DocInfo(**d) for d in json.loads((path / DOCUMENTS_FILE).read_text("utf-8"))}
        calibrator = Calibrator.load(path) if (path / "calibrator.json").exists() else None
        return cls(
            version=path.name,
            path=path,
            documents=documents,
            dense=DenseRetriever.load(path / DENSE_DIR, torch_threads=torch_threads),
            bm25=Bm25Index.load(path / BM25_DIR),
            chars=CharNgramIndex.load(path / CHARS_DIR),
            graph=KnowledgeGraph.load(path / GRAPH_DIR),
            calibrator=calibrator,
        )


def write_documents(records: Iterable, directory: Path) -> int:
    """Snapshot the FAQ documents into an index version, so a version answers on its own."""
    docs = [{"doc_id": r.doc_id, "category": r.category, "question": r.question, "answer": r.answer}
            for r in records]
    (directory / DOCUMENTS_FILE).write_text(json.dumps(docs, ensure_ascii=False), encoding="utf-8")
    return len(docs)


KeywordFn = Callable[[str], list[str]]


class HybridRetriever:
    """Runs every configured signal, fuses them and computes the calibrated confidence."""

    def __init__(self, index: RetrievalIndex, keyword_fn: KeywordFn, settings: RetrievalSettings | None = None):
        self.index = index
        self.keyword_fn = keyword_fn
        self.settings = settings or RetrievalSettings()

    def _signal_hits(self, text: str, keywords: list[str], timings: dict[str, float]):
        depth, wanted = self.settings.depth, self.settings.signals
        hits: dict[str, list[tuple[str, float]]] = {}
        explanations: dict[str, list] = {}
        dense_signals = [s for s in wanted if s in self.index.dense.stores]
        if dense_signals:
            hits.update(self.index.dense.search_signals(text, depth, dense_signals, timings))
        for signal, searcher in (("bm25", self.index.bm25), ("chars", self.index.chars)):
            if signal in wanted:
                t = time.perf_counter()
                hits[signal] = searcher.search(text, depth)
                timings[signal] = (time.perf_counter() - t) * 1000
        if "graph" in wanted:
            t = time.perf_counter()
            graph_hits = self.index.graph.search(keywords, depth) if keywords else []
            hits["graph"] = [(h.doc_id, h.score) for h in graph_hits]
            explanations = {h.doc_id: h.explanation() for h in graph_hits}
            timings["graph"] = (time.perf_counter() - t) * 1000
        return hits, explanations

    def retrieve(self, text: str) -> Retrieval:
        timings: dict[str, float] = {}
        text = normalise_message(text)
        t = time.perf_counter()
        keywords = self.keyword_fn(text) if "graph" in self.settings.signals else []
        timings["keywords"] = (time.perf_counter() - t) * 1000
        hits, explanations = self._signal_hits(text, keywords, timings)
        t = time.perf_counter()
        candidates = merge_signals(hits)
        if len(self.settings.signals) == 1:
            ranked = sorted(candidates, key=lambda c: c.scores[self.settings.signals[0]], reverse=True)
            confidence = 0.0
        else:
            ranked = rank(candidates, self.index.calibrator, self.settings.fusion)
            confidence = ranked[0].probability if ranked else 0.0
        timings["fusion"] = (time.perf_counter() - t) * 1000
        return Retrieval(text, keywords, ranked, confidence, explanations, timings)
