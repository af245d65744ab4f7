"""`POST /api/v1/review` and the `flask train review` / `flask eval review` commands."""
from __future__ import annotations

import json

import pytest

from app.services.review import ASPECTS, SENTIMENTS
from tests.conftest import DATA_DIR
from trainers.review import HELDOUT_REVIEWS, read_reviews, train_linear

REVIEWS = DATA_DIR / "reviews" / "reviews.jsonl"
METRICS = {"aspect_micro_f1", "aspect_macro_f1", "sentiment_accuracy", "sentiment_macro_f1",
           "highlight_accuracy", "n"}


@pytest.fixture(scope="module")
def analyzer():
    """A lexical-only linear analyzer: seconds to fit, and the endpoint cannot tell the difference."""
    trained, _ = train_linear(read_reviews(REVIEWS)[:120], None, None, folds=2, log=lambda _: None)
    return trained


@pytest.fixture
def review_client(app, analyzer):
    app.extensions["models"].set("review", analyzer)
    return app.test_client()


def test_review_lists_aspects_with_sentiment_probability_and_highlight(review_client):
    text = "배송이 빨라요 그런데 사이즈가 작게 나왔어요"
    response = review_client.post("/api/v1/review", json={"text": text})
    assert response.status_code == 200
    aspects = response.get_json()["aspects"]
    assert aspects, "every review rates at least one aspect"
    for item in aspects:
        assert set(item) == {"aspect", "sentiment", "probability", "highlight"}
        assert item["aspect"] in ASPECTS and item["sentiment"] in SENTIMENTS
        assert 0.0 <= item["probability"] <= 1.0 and item["highlight"] in text.split()
    probabilities = [item["probability"] for item in aspects]
    assert probabilities == sorted(probabilities, reverse=True)
    assert "배송" in [item["aspect"] for item in aspects]


@pytest.mark.parametrize("body, message", [
    ({}, "missing field: text"),
    ({"text": "   "}, "text"),
    ({"text": ""}, "text"),
    ({"text": 42}, "text"),
    ({"text": "좋아요", "extra": 1}, "extra"),
])
def test_bad_review_requests_are_400(review_client, body, message):
    response = review_client.post("/api/v1/review", json=body)
    assert response.status_code == 400
    assert message in response.get_json()["error"]["message"]


def test_too_long_review_is_400(app, review_client):
    limit = app.config["REVIEW_MAX_CHARS"]
    assert review_client.post("/api/v1/review", json={"text": "좋" * limit}).status_code == 200
    response = review_client.post("/api/v1/review", json={"text": "좋" * (limit + 1)})
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "invalid_request"


def test_review_needs_json(review_client):
    response = review_client.post("/api/v1/review", data="좋아요", content_type="text/plain")
    assert response.status_code == 415
    assert review_client.post("/api/v1/review", data="{", content_type="application/json").status_code == 400


def test_review_without_a_trained_model_is_503(app, tmp_path):
    app.config["REVIEW_MODEL"] = str(tmp_path / "missing")
    response = app.test_client().post("/api/v1/review", json={"text": "좋아요"})
    assert response.status_code == 503 and "review" in response.get_json()["error"]["message"]


def test_train_and_eval_commands_write_a_model_and_print_metrics_json(runner, tmp_path):
    data = tmp_path / "reviews.jsonl"
    lines = REVIEWS.read_text(encoding="utf-8").splitlines()[:HELDOUT_REVIEWS + 60]
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    output = tmp_path / "review"
    result = runner.invoke(args=["train", "review", "--base-model", "none", "--data", str(data),
                                 "--output", str(output), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert (output / "review.json").exists() and (output / "linear.joblib").exists()
    assert json.loads((output / "training.json").read_text())["n_train"] == 60
    assert "wrote the review model" in result.output

    result = runner.invoke(args=["eval", "review", "--data", str(data), "--model", str(output), "--threads", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    assert METRICS <= set(metrics) and metrics["n"] == HELDOUT_REVIEWS + 60


def test_eval_without_a_model_says_how_to_train(runner, tmp_path):
    result = runner.invoke(args=["eval", "review", "--model", str(tmp_path / "none")])
    assert result.exit_code != 0 and "flask train review" in result.output
