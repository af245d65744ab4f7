"""The review analyzer: both trainers learn, the highlight is the masked word that matters, and a
saved model loads back to the same answers."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from sklearn.metrics import log_loss

from app.services.review import (
    ASPECTS,
    SENTIMENTS,
    AspectDecision,
    ReviewAnalyzer,
    SentimentQuery,
    masked_variants,
    ordinal_probabilities,
)
from tests.conftest import DATA_DIR
from trainers.loop import TrainConfig
from trainers.review import (
    HELDOUT_REVIEWS,
    TransformerTaskSettings,
    aspect_labels,
    build_small_base,
    evaluate,
    highlight_matches,
    read_reviews,
    split_reviews,
    train_linear,
    train_transformer,
)

REVIEWS = DATA_DIR / "reviews" / "reviews.jsonl"


class HashingEmbedder:
    """A tiny deterministic stand-in for e5: hashed character bigrams, L2-normalised."""

    dim = 16

    def encode_queries(self, texts):
        rows = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for a, b in zip(text, text[1:]):
                rows[i, hashlib.md5((a + b).encode()).digest()[0] % self.dim] += 1.0
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


@pytest.fixture(scope="module")
def reviews():
    return read_reviews(REVIEWS)


@pytest.fixture(scope="module")
def linear(reviews):
    analyzer, metrics = train_linear(reviews[:160], HashingEmbedder(), None, folds=3, log=lambda _: None)
    return analyzer, metrics


def test_split_holds_out_the_same_reviews_every_time(reviews):
    train, held = split_reviews(reviews)
    again_train, again_held = split_reviews(reviews)
    assert len(held) == HELDOUT_REVIEWS and len(train) == len(reviews) - HELDOUT_REVIEWS
    assert [r.review_id for r in held] == [r.review_id for r in again_held]
    assert not {r.review_id for r in held} & {r.review_id for r in train}


def test_linear_heads_fit_their_training_data_better_than_the_prior(reviews, linear):
    analyzer, metrics = linear
    backend, records = analyzer.backend, reviews[:160]
    matrix = backend.featurizer.aspect_matrix([r.text for r in records], backend._embed([r.text for r in records]),
                                              backend.settings.aspect_embedding_weight)
    gold = aspect_labels(records)
    for j in (ASPECTS.index("배송"), ASPECTS.index("사이즈")):
        prior = np.full(len(records), gold[:, j].mean())
        assert log_loss(gold[:, j], backend.aspect_heads[j].predict_proba(matrix)[:, 1]) < log_loss(gold[:, j], prior)
    assert 0.05 <= metrics["threshold"] <= 0.95 and metrics["cv_aspect_micro_f1"] > 0.3


def test_linear_analyzer_reads_aspects_and_sentiment_of_reviews_it_learned_from(reviews, linear):
    analyzer, _ = linear
    metrics = evaluate(analyzer, reviews[:60])
    assert metrics["aspect_micro_f1"] > 0.8
    assert metrics["sentiment_accuracy"] > 0.6
    assert metrics["n"] == 60 and metrics["n_aspects"] == sum(len(r.aspects) for r in reviews[:60])


class KeywordBackend:
    """Aspect probabilities driven by single words, so the right highlight is known; records calls."""

    architecture = "stub"
    mask_token = ""
    cues = {"배송": "늦어요", "디자인": "예쁘지만"}

    def __init__(self):
        self.aspect_calls: list[list[str]] = []

    def aspect_probabilities(self, texts):
        self.aspect_calls.append(list(texts))
        probs = np.full((len(texts), len(ASPECTS)), 0.05)
        for i, text in enumerate(texts):
            for aspect, cue in self.cues.items():
                probs[i, ASPECTS.index(aspect)] = 0.9 if cue in text.split() else 0.2
        return probs

    def sentiment_probabilities(self, queries: list[SentimentQuery]):
        probs = np.zeros((len(queries), len(SENTIMENTS)))
        for i, q in enumerate(queries):
            probs[i, SENTIMENTS.index(-1 if q.aspect == "배송" else 1)] = 1.0
        return probs


def test_highlight_is_the_word_whose_masking_drops_the_aspect_most_in_one_batch():
    backend = KeywordBackend()
    results = ReviewAnalyzer(backend, AspectDecision()).analyze("옷은 예쁘지만 배송은 늦어요")
    by_aspect = {r.aspect: r for r in results}
    assert set(by_aspect) == {"배송", "디자인"}
    assert by_aspect["배송"].highlight == "늦어요" and by_aspect["디자인"].highlight == "예쁘지만"
    assert by_aspect["배송"].sentiment == -1 and by_aspect["디자인"].sentiment == 1
    assert backend.aspect_calls == [["옷은 예쁘지만 배송은 늦어요", *masked_variants("옷은 예쁘지만 배송은 늦어요".split(), "")]]


def test_gold_aspects_are_rated_even_when_not_detected():
    results = ReviewAnalyzer(KeywordBackend()).analyze("옷은 예쁘지만 배송은 늦어요", aspects=["가격"])
    assert [r.aspect for r in results] == ["가격"] and results[0].highlight in "옷은 예쁘지만 배송은 늦어요".split()


def test_at_least_one_aspect_is_reported():
    decision = AspectDecision([0.99] * len(ASPECTS), min_aspects=1)
    probs = np.linspace(0.1, 0.5, len(ASPECTS))
    assert decision.select(probs) == [len(ASPECTS) - 1]
    assert AspectDecision([0.99] * len(ASPECTS), min_aspects=0).select(probs) == []


def test_ordinal_probabilities_are_a_distribution():
    # P(y > -2), P(y > -1), P(y > 0), P(y > 1); the second row's heads disagree (0.5 < 0.6).
    probs = ordinal_probabilities(np.array([[0.95, 0.9, 0.8, 0.2], [0.5, 0.6, 0.2, 0.1]]))
    assert np.allclose(probs[0], [0.05, 0.05, 0.1, 0.6, 0.2])
    assert np.allclose(probs.sum(axis=1), 1.0) and (probs >= 0).all()


def test_highlight_match_allows_a_particle_either_way():
    assert highlight_matches("배송이", "배송이") and highlight_matches("배송이", "배송")
    assert highlight_matches("늦어요", "늦어요ㅠ") and not highlight_matches("배송이", "늦어요")
    assert not highlight_matches(None, "늦어요")


def test_linear_model_loads_back_to_the_same_answers(tmp_path, reviews, linear):
    analyzer, _ = linear
    analyzer.save_pretrained(tmp_path / "review")
    loaded = ReviewAnalyzer.from_pretrained(tmp_path / "review", embedder=HashingEmbedder())
    for record in reviews[:5]:
        assert loaded.analyze(record.text) == analyzer.analyze(record.text)
    assert loaded.decision == analyzer.decision


def test_a_model_trained_without_embedder_loads_without_one(tmp_path, reviews):
    analyzer, _ = train_linear(reviews[:80], None, None, folds=2, log=lambda _: None)
    analyzer.save_pretrained(tmp_path / "lexical")
    loaded = ReviewAnalyzer.from_pretrained(tmp_path / "lexical")
    assert loaded.backend.embedder is None
    assert loaded.analyze(reviews[0].text) == analyzer.analyze(reviews[0].text)


def test_missing_model_directory_says_how_to_make_one(tmp_path):
    with pytest.raises(FileNotFoundError, match="flask train review"):
        ReviewAnalyzer.from_pretrained(tmp_path / "nothing")


def test_tiny_transformer_trains_on_the_shared_loop_and_loads_back(tmp_path, reviews):
    records = reviews[:60]
    base = build_small_base(tmp_path / "base", [r.text for r in records], hidden=32, layers=1, heads=2,
                            vocab_size=1000)
    configs = {stage: TrainConfig(output_dir=str(tmp_path / "model" / stage), epochs=4, batch_size=8, lr=3e-3,
                                  warmup_ratio=0.0, early_stop_patience=10) for stage in ("aspect", "sentiment")}
    analyzer, metrics = train_transformer(records, TransformerTaskSettings(base_model=str(base)),
                                          configs["aspect"], configs["sentiment"], log=lambda _: None)
    for stage in ("aspect", "sentiment"):
        history = json.loads((tmp_path / "model" / stage / "history.json").read_text())
        assert history[-1]["train_loss"] < history[0]["train_loss"], stage
        assert (tmp_path / "model" / stage / "loss.png").exists()
    analyzer.save_pretrained(tmp_path / "model")
    loaded = ReviewAnalyzer.from_pretrained(tmp_path / "model")
    assert loaded.architecture == "transformer" and loaded.backend.mask_token == "<mask>"
    text = records[0].text
    assert [(r.aspect, r.sentiment, r.highlight) for r in loaded.analyze(text)] == \
           [(r.aspect, r.sentiment, r.highlight) for r in analyzer.analyze(text)]
    assert all(abs(a.probability - b.probability) < 1e-5
               for a, b in zip(loaded.analyze(text), analyzer.analyze(text)))
