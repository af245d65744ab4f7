"""Fusion of the retrieval signals and the calibrated confidence that decides the route.

Each signal (text-CLIP and untrained-backbone cosines against FAQ passages and against known
questions, morpheme BM25, character n-grams, the knowledge graph) proposes candidates with scores on
its own scale. Two rankers are offered and measured (`flask eval retrieval`): reciprocal-rank
fusion, and a learned one. The learned ranker is a logistic regression over per-candidate features, fitted at index build on hand-written tuning messages (in-domain and
out-of-domain): its output is P(this candidate is the right FAQ), a calibrated probability, so the
top candidate's value is also the confidence the router thresholds. (Raw fused scores are not
probabilities: reciprocal-rank scores top out near 1/61, cosines of unrelated texts sit near 0.8.)

Features (per signal: score, reciprocal rank, margin, score relative to the best; plus how many
signals rank the candidate first) include the margin to the best *other* candidate, so near-ties
between two FAQs lower the confidence instead of being answered confidently; an empty graph result
only zeroes the graph features, the other signals still rank.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# dense: fine-tuned text-CLIP, query -> passage; dense_questions: the same query vector -> the FAQ's
# known questions and paraphrases; base / base_questions: the same with the untrained backbone;
# bm25: morphemes; chars: character n-grams of space-free text; graph: the knowledge graph.
SIGNALS = ("dense", "dense_questions", "base", "base_questions", "bm25", "chars", "graph")
RRF_K = 60
CALIBRATOR_FILE = "calibrator.json"
# Per signal: its score, the reciprocal rank (0 if absent), the margin to the best *other* candidate,
# and the score relative to the top. A candidate a signal did not return scores 0 for the lexical
# signals (they return every document that shares anything with the message, up to the depth) and the
# signal's lowest returned score for the dense ones (every document has a cosine; it was below that).
ZERO_WHEN_ABSENT = frozenset({"bm25", "chars", "graph"})
PER_SIGNAL = ("score", "rr", "margin", "rel")
FEATURES = tuple(f"{s}_{f}" for s in SIGNALS for f in PER_SIGNAL) + ("votes",)


@dataclass
class Candidate:
    """One FAQ proposed by at least one signal, with every signal's score and rank (0 = absent)."""

    doc_id: str
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)  # 1-based
    probability: float = 0.0
    rrf: float = 0.0


def merge_signals(hits: dict[str, list[tuple[str, float]]]) -> list[Candidate]:
    """Union of every signal's ranked (doc_id, score) list into candidates."""
    candidates: dict[str, Candidate] = {}
    for signal, ranked in hits.items():
        for rank, (doc_id, score) in enumerate(ranked, 1):
            cand = candidates.setdefault(doc_id, Candidate(doc_id))
            cand.scores[signal] = float(score)
            cand.ranks[signal] = rank
    for cand in candidates.values():
        cand.rrf = sum(1.0 / (RRF_K + r) for r in cand.ranks.values())
    return list(candidates.values())


def _signal_features(candidates: list[Candidate], signal: str) -> np.ndarray:
    """The PER_SIGNAL columns of one signal for every candidate (all zero if the signal found nothing)."""
    found = [(i, c.scores[signal]) for i, c in enumerate(candidates) if signal in c.scores]
    columns = np.zeros((len(candidates), len(PER_SIGNAL)))
    if not found:
        return columns
    rows = np.array([i for i, _ in found])
    values = np.array([v for _, v in found])
    order = np.argsort(-values, kind="stable")
    top = values[order[0]]
    scores = np.full(len(candidates), 0.0 if signal in ZERO_WHEN_ABSENT else values.min())
    scores[rows] = values
    # The best other candidate: the top one for everybody but the top itself, which is compared with
    # the runner-up (nothing, i.e. 0, when the signal found a single candidate).
    best_other = np.full(len(candidates), top)
    best_other[rows[order[0]]] = values[order[1]] if len(values) > 1 else 0.0
    columns[:, 0] = scores
    columns[:, 1] = [1.0 / c.ranks[signal] if signal in c.ranks else 0.0 for c in candidates]
    columns[:, 2] = scores - best_other
    columns[:, 3] = scores / top if top > 0 else 0.0
    return columns


def candidate_features(candidates: list[Candidate]) -> np.ndarray:
    """The feature matrix (one row per candidate, columns FEATURES) for one query."""
    if not candidates:
        return np.zeros((0, len(FEATURES)))
    blocks = [_signal_features(candidates, s) for s in SIGNALS]
    votes = np.array([[sum(1 for s in SIGNALS if c.ranks.get(s) == 1) / len(SIGNALS)] for c in candidates])
    return np.hstack([*blocks, votes])


@dataclass
class Calibrator:
    """Standardised logistic regression over FEATURES: P(candidate is the right FAQ)."""

    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        if features.size == 0:
            return np.zeros(0)
        z = (features - np.asarray(self.mean)) / np.asarray(self.scale)
        logits = z @ np.asarray(self.coef) + self.intercept
        return 1.0 / (1.0 + np.exp(-logits))

    @classmethod
    def fit(cls, feature_rows: list[np.ndarray], labels: list[np.ndarray], c: float = 1.0) -> "Calibrator":
        """Fit on per-query feature matrices and 0/1 labels (1 = the gold FAQ)."""
        from sklearn.linear_model import LogisticRegression

        x = np.vstack(feature_rows)
        y = np.concatenate(labels)
        mean, scale = x.mean(axis=0), x.std(axis=0)
        scale[scale == 0] = 1.0
        model = LogisticRegression(C=c, max_iter=2000, class_weight=None)
        model.fit((x - mean) / scale, y)
        return cls(mean.tolist(), scale.tolist(), model.coef_[0].tolist(), float(model.intercept_[0]))

    def save(self, directory: Path) -> None:
        payload = {"features": list(FEATURES), "mean": self.mean, "scale": self.scale,
                   "coef": self.coef, "intercept": self.intercept}
        (directory / CALIBRATOR_FILE).write_text(json.dumps(payload, indent=2), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> "Calibrator":
        payload = json.loads((directory / CALIBRATOR_FILE).read_text(encoding="utf-8"))
        if payload["features"] != list(FEATURES):
            raise ValueError(f"{directory / CALIBRATOR_FILE} was fitted on other features; rebuild the index")
        return cls(payload["mean"], payload["scale"], payload["coef"], payload["intercept"])


def rank(candidates: list[Candidate], calibrator: Calibrator | None, method: str) -> list[Candidate]:
    """Score candidates with the calibrator and order them by `method` ("learned" or "rrf")."""
    if calibrator is not None and candidates:
        for cand, p in zip(candidates, calibrator.probabilities(candidate_features(candidates))):
            cand.probability = float(p)
    key = (lambda c: (c.probability, c.rrf)) if method == "learned" and calibrator else (lambda c: (c.rrf, c.probability))
    return sorted(candidates, key=key, reverse=True)
