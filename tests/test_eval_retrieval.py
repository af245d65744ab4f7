"""`flask eval retrieval` on the real index: the metrics line, every mode, and the baseline without
the labelled messages."""
from __future__ import annotations

import json

import pytest

from app.commands.evaluate import MODES
from app.services.fusion import SIGNALS

QUERIES = [
    {"query": "이사화물 통관예약은 어떻게 하나요?", "doc_id": "M-001"},
    {"query": "개인통관고유부호 발급 어디서 해요", "doc_id": "D-011"},
    {"query": "여행자 면세한도 얼마예요", "doc_id": "T-001"},
    {"query": "오늘 점심 뭐 먹지?", "doc_id": None},
]
METRICS = {"top1", "top5", "top10", "mrr10", "abstain_precision", "abstain_recall", "answered_correct", "n"}


@pytest.fixture(scope="module")
def queries_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("eval") / "queries.jsonl"
    path.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in QUERIES), encoding="utf-8")
    return path


def _evaluate(chat_app, *args) -> dict:
    result = chat_app.test_cli_runner().invoke(args=["eval", "retrieval", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])  # tqdm writes to stderr


def test_hybrid_prints_ranking_and_abstention_metrics_as_the_last_line(chat_app, queries_file):
    metrics = _evaluate(chat_app, "--queries", str(queries_file))
    assert METRICS <= set(metrics) and metrics["n"] == len(QUERIES) and metrics["mode"] == "hybrid"
    assert 0 <= metrics["top1"] <= metrics["top5"] <= metrics["top10"] <= 1
    assert metrics["abstain_recall"] is not None and 0 <= metrics["answered_correct"] <= 1


def test_a_single_signal_mode_has_no_abstention(chat_app, queries_file):
    """Each signal is a mode of its own (one index load per run: the other signals go the same way)."""
    assert set(MODES) == {"hybrid", *SIGNALS}
    metrics = _evaluate(chat_app, "--queries", str(queries_file), "--mode", "chars")
    assert metrics["mode"] == "chars" and metrics["n"] == len(QUERIES) and metrics["abstain_precision"] is None
    assert 0 <= metrics["top1"] <= metrics["top10"] <= 1


def test_the_baseline_without_labelled_messages_is_built_aside(chat_app, queries_file):
    """The bundled FAQ alone answers from a temporary index; the published one stays current."""
    from indexer.versions import current_version

    before = current_version(chat_app.config["INDEX_DIR"])
    metrics = _evaluate(chat_app, "--queries", str(queries_file), "--mode", "bm25", "--without-messages")
    assert metrics["n"] == len(QUERIES) and metrics["top10"] > 0
    assert current_version(chat_app.config["INDEX_DIR"]) == before
