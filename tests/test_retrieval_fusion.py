"""Fusion of the retrieval signals: per-candidate features, the calibrator, and both rankers."""
from __future__ import annotations

import numpy as np
import pytest

from app.services.fusion import FEATURES, PER_SIGNAL, SIGNALS, Calibrator, candidate_features, merge_signals, rank


def _column(signal: str, feature: str) -> int:
    return FEATURES.index(f"{signal}_{feature}")


def test_features_describe_each_signal_and_the_votes():
    candidates = merge_signals({"bm25": [("A", 8.0), ("B", 2.0)], "dense": [("B", 0.9), ("C", 0.5)]})
    by_id = {c.doc_id: row for c, row in zip(candidates, candidate_features(candidates))}
    assert len(FEATURES) == len(SIGNALS) * len(PER_SIGNAL) + 1
    assert by_id["A"][_column("bm25", "score")] == 8.0
    assert by_id["A"][_column("bm25", "rr")] == 1.0 and by_id["B"][_column("bm25", "rr")] == 0.5
    assert by_id["A"][_column("bm25", "margin")] == 6.0  # top: distance to the runner-up
    assert by_id["B"][_column("bm25", "margin")] == -6.0  # others: distance to the top
    assert by_id["B"][_column("bm25", "rel")] == 0.25
    # a candidate a lexical signal did not return scores 0; a dense one, that signal's lowest score
    assert by_id["C"][_column("bm25", "score")] == 0.0 and by_id["C"][_column("bm25", "rr")] == 0.0
    assert by_id["A"][_column("dense", "score")] == 0.5 and by_id["A"][_column("dense", "rr")] == 0.0
    # a signal that found nothing contributes zeros
    assert not any(by_id["A"][_column("graph", f)] for f in PER_SIGNAL)
    assert by_id["A"][-1] == by_id["B"][-1] == 1 / len(SIGNALS)  # each is first in one signal
    assert by_id["C"][-1] == 0.0


def test_a_near_tie_has_no_margin():
    candidates = merge_signals({"chars": [("A", 0.5), ("B", 0.5), ("C", 0.1)]})
    rows = candidate_features(candidates)
    assert rows[0][_column("chars", "margin")] == rows[1][_column("chars", "margin")] == 0.0
    assert candidate_features([]).shape == (0, len(FEATURES))


def test_a_single_hit_stands_out_instead_of_looking_like_a_tie():
    candidates = merge_signals({"bm25": [("A", 4.0)], "dense": [("A", 0.8), ("B", 0.7)]})
    rows = {c.doc_id: row for c, row in zip(candidates, candidate_features(candidates))}
    assert rows["A"][_column("bm25", "margin")] == 4.0
    assert rows["B"][_column("bm25", "score")] == rows["B"][_column("bm25", "rel")] == 0.0
    assert rows["B"][_column("bm25", "margin")] == -4.0 and rows["B"][_column("bm25", "rr")] == 0.0


def _synthetic_queries(rng: np.random.Generator, n: int):
    """Queries whose gold candidate is first in BM25 and dense with probability 0.8."""
    rows, labels = [], []
    for _ in range(n):
        docs = [f"D{i}" for i in range(5)]
        gold = docs[0] if rng.random() < 0.8 else docs[rng.integers(1, 5)]
        order = [gold] + [d for d in docs if d != gold]
        hits = {"bm25": [(d, 10.0 - 2 * i) for i, d in enumerate(order)],
                "dense": [(d, 0.9 - 0.05 * i + rng.normal(0, 0.01)) for i, d in enumerate(order)]}
        candidates = merge_signals(hits)
        rows.append(candidate_features(candidates))
        labels.append(np.array([c.doc_id == "D0" for c in candidates], dtype=np.int64))
    return rows, labels


def test_calibrator_learns_probabilities_and_round_trips(tmp_path):
    rows, labels = _synthetic_queries(np.random.default_rng(0), 200)
    calibrator = Calibrator.fit(rows, labels)
    p = calibrator.probabilities(rows[0])
    assert p.shape == (len(rows[0]),) and ((0 <= p) & (p <= 1)).all()
    calibrator.save(tmp_path)
    assert np.allclose(Calibrator.load(tmp_path).probabilities(rows[0]), p)
    assert calibrator.probabilities(np.zeros((0, len(FEATURES)))).size == 0


def test_calibrator_fitted_on_other_features_is_refused(tmp_path):
    rows, labels = _synthetic_queries(np.random.default_rng(1), 50)
    Calibrator.fit(rows, labels).save(tmp_path)
    payload = (tmp_path / "calibrator.json").read_text().replace('"votes"', '"something_else"')
    (tmp_path / "calibrator.json").write_text(payload)
    with pytest.raises(ValueError, match="rebuild the index"):
        Calibrator.load(tmp_path)


def test_rankers_order_candidates():
    hits = {"bm25": [("A", 9.0), ("B", 1.0)], "dense": [("A", 0.9), ("B", 0.2)], "chars": [("B", 0.3)]}
    # reciprocal-rank fusion counts agreement only: B is returned by three signals, A by two
    by_rrf = rank(merge_signals(hits), None, "rrf")
    assert [c.doc_id for c in by_rrf] == ["B", "A"]
    assert by_rrf[0].rrf == pytest.approx(2 / 62 + 1 / 61)
    rows, labels = _synthetic_queries(np.random.default_rng(2), 200)
    learned = rank(merge_signals(hits), Calibrator.fit(rows, labels), "learned")
    assert learned[0].doc_id == "A" and learned[0].probability > learned[1].probability
