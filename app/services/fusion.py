"""Fusion of the retrieval signals and the calibrated confidence that decides the route.

Each signal (dense text-CLIP cosine, the untrained backbone's cosine, BM25, knowledge graph) proposes
candidates with scores on its own scale. Two rankers are offered and measured (`flask eval
retrieval`): reciprocal-rank fusion, and a learned one. The learned ranker is a logistic regression
over per-candidate features, fitted at index build on hand-written tuning messages (in-domain and
out-of-domain): its output is P(this candidate is the right FAQ), a calibrated probability, so the
top candidate's value is also the confidence the router thresholds. (Raw fused scores are not
probabilities: reciprocal-rank scores top out near 1/61, cosines of unrelated texts sit near 0.8.)

Features include the margin to the best *other* candidate, so near-ties between two FAQs lower the
confidence instead of being answered confidently; an empty graph result only zeroes the graph
features, the other signals still rank.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

SIGNALS = ("dense", "base", "bm25", "graph")
RRF_K = 60
CALIBRATOR_FILE = "calibrator.json"

FEATURES = (
    "dense", "dense_rr", "dense_margin",
    "base", "base_margin",
    "bm25_rel", "bm25_rr", "bm25_log",
    "graph_rel", "graph_rr",
    "votes",
)


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


def _best_other(values: dict[str, float], doc_id: str) -> float:
    others = [v for d, v in values.items() if d != doc_id]
    return max(others) if others else 0.0


def candidate_features(candidates: list[Candidate]) -> np.ndarray:
    """The feature matrix (one row per candidate, columns FEATURES) for one query."""
    per_signal = {s: {c.doc_id: c.scores[s] for c in candidates if s in c.scores} for s in SIGNALS}
    top = {s: max(v.values()) if v else 0.0 for s, v in per_signal.items()}
    floor = {s: min(v.values()) if v else 0.0 for s, v in per_signal.items()}
    rows = []
    for c in candidates:
        def score(s: str) -> float:
            # A candidate a signal did not return scores at that signal's lowest returned value.
            return c.scores.get(s, floor[s])

        def rr(s: str) -> float:
            return 1.0 / c.ranks[s] if s in c.ranks else 0.0

        rows.append([
            score("dense"), rr("dense"), score("dense") - _best_other(per_signal["dense"], c.doc_id),
            score("base"), score("base") - _best_other(per_signal["base"], c.doc_id),
            c.scores.get("bm25", 0.0) / top["bm25"] if top["bm25"] > 0 else 0.0, rr("bm25"),
            math.log1p(max(0.0, c.scores.get("bm25", 0.0))),
            c.scores.get("graph", 0.0) / top["graph"] if top["graph"] > 0 else 0.0, rr("graph"),
            sum(1 for s in SIGNALS if c.ranks.get(s) == 1) / len(SIGNALS),
        ])
    return np.asarray(rows, dtype=np.float64).reshape(len(candidates), len(FEATURES))


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
