"""FAISS store, versioned index directories, and the dense index build + retriever (tiny models)."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import BertConfig

from indexer.dense import DenseRetriever, passage_text, question_texts, write_dense_index
from indexer.encoder import TextClip
from indexer.metrics import evaluate_ranking
from indexer.store import StoreSettings, VectorStore
from indexer.versions import current_version, list_versions, new_version, prune, publish, version_path
from trainers.data import faq_from_json, read_jsonl
from trainers.tokenizer import train_tokenizer

DATA = Path(__file__).resolve().parent.parent / "data" / "customs"


def unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def noisy(x: np.ndarray, scale: float = 0.05, seed: int = 1) -> np.ndarray:
    y = x + np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32) * scale
    return y / np.linalg.norm(y, axis=1, keepdims=True)


# --- store -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_agrees_with_flat_on_top1(kind):
    vectors = unit_rows(2000)
    ids = [f"D-{i:04d}" for i in range(2000)]
    flat = VectorStore.build(vectors, ids)
    approx = VectorStore.build(vectors, ids, StoreSettings(approx_min_vectors=1000, approx_kind=kind))
    assert (flat.kind, approx.kind) == ("flat", kind)
    queries = noisy(vectors[:50])
    flat_top1 = [hits[0][0] for hits in flat.search(queries, 5)]
    assert flat_top1 == [hits[0][0] for hits in approx.search(queries, 5)]
    assert flat_top1 == ids[:50]


def test_store_round_trips_through_disk_and_dedupes_documents(tmp_path):
    vectors = unit_rows(30)
    ids = [f"D-{i % 10:02d}" for i in range(30)]  # every document owns three rows
    store = VectorStore.build(vectors, ids)
    store.save(tmp_path / "store")
    loaded = VectorStore.load(tmp_path / "store")
    hits = loaded.search(vectors[3], 5)[0]
    assert hits == store.search(vectors[3], 5)[0]
    assert hits[0] == ("D-03", pytest.approx(1.0, abs=1e-5))
    assert len({doc for doc, _ in hits}) == 5
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert not list((tmp_path / "store").glob(".*"))  # no temp files left behind


# --- versions --------------------------------------------------------------------------------------

def test_versions_are_sortable_and_publish_switches_current(tmp_path):
    assert current_version(tmp_path) is None
    first, path1 = new_version(tmp_path)
    second, path2 = new_version(tmp_path)
    assert first < second and path1.is_dir() and path2 == version_path(tmp_path, second)
    publish(tmp_path, first)
    assert current_version(tmp_path) == first
    publish(tmp_path, second)
    assert current_version(tmp_path) == second
    with pytest.raises(ValueError):
        version_path(tmp_path, "../etc")


def test_a_build_that_dies_midway_leaves_the_previous_version_current(tmp_path):
    good, path = new_version(tmp_path)
    (path / "vectors").write_text("complete")
    publish(tmp_path, good)

    def build() -> None:
        version, target = new_version(tmp_path)
        (target / "vectors").write_text("half")
        raise RuntimeError("killed midway")
        publish(tmp_path, version)  # never reached

    with pytest.raises(RuntimeError):
        build()
    assert current_version(tmp_path) == good
    assert (version_path(tmp_path, good) / "vectors").read_text() == "complete"


def test_prune_keeps_the_newest_and_the_current(tmp_path):
    versions = [new_version(tmp_path)[0] for _ in range(5)]
    publish(tmp_path, versions[0])
    removed = prune(tmp_path, keep=2)
    assert removed == versions[1:3]
    assert list_versions(tmp_path) == [versions[0], *versions[3:]]


# --- metrics -----------------------------------------------------------------------------------------

def test_evaluate_ranking_counts_only_in_domain_queries():
    ranked = [["A", "B"], ["B", "A"], ["C"], ["A"]]
    gold = ["A", "A", None, "Z"]
    m = evaluate_ranking(ranked, gold)
    assert m == {"n": 3, "top1": pytest.approx(1 / 3), "top5": pytest.approx(2 / 3),
                 "top10": pytest.approx(2 / 3), "mrr10": pytest.approx((1 + 0.5) / 3)}


# --- dense build + retrieval ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def records():
    return [faq_from_json(o) for path in sorted(DATA.glob("faq_*.jsonl")) for o in list(read_jsonl(path))[:4]]


@pytest.fixture(scope="module")
def tiny_models(records, tmp_path_factory) -> tuple[Path, Path]:
    """A tiny 'base' encoder directory and a tiny TextClip trained from it for no steps (same vocab)."""
    root = tmp_path_factory.mktemp("models")
    texts = [t for r in records for t in (r.question, r.answer)]
    tok = train_tokenizer(texts, {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>",
                                  "unk_token": "<unk>"}, vocab_size=400)
    config = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    base = TextClip.from_config(config, tok)
    base.query_encoder.save_pretrained(root / "base")
    tok.save_pretrained(root / "base")
    clip = TextClip.from_pretrained(root / "base", shared=False)
    with torch.no_grad():  # make the fine-tuned query tower differ from the base (vocabulary kept)
        for p in clip.query_encoder.encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    clip.save_pretrained(root / "clip")
    return root / "clip", root / "base"


def test_dense_index_build_and_search(records, tiny_models, tmp_path):
    clip_path, base_path = tiny_models
    stats = write_dense_index(records, clip_path, base_path, tmp_path / "dense")
    assert stats["documents"] == stats["vectors"] == len(records)
    assert stats["base_vectors_reused"]  # only the query tower was changed: passages encoded once
    assert not stats["base_question_vectors_reused"]  # ... and known questions encoded by both towers
    retriever = DenseRetriever.load(tmp_path / "dense")
    # the index version is self-contained: it does not need the model directories any more
    assert (tmp_path / "dense" / "clip_model" / "text_clip.json").exists()
    assert not (tmp_path / "dense" / "clip_model" / "answer_encoder").exists()
    # frozen vocabulary is shared between the two query towers
    assert retriever.clip.query_encoder.get_input_embeddings() is retriever.base.query_encoder.get_input_embeddings()

    record = records[3]
    hits = retriever.search(record.question, 5)
    assert len(hits) == 5 and len({d for d, _ in hits}) == 5
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    expected = TextClip.from_pretrained(clip_path)
    query_vec = expected.encode_queries([record.question])[0]
    passages = expected.encode_passages([passage_text(r) for r in records])
    best = int((passages @ query_vec).argmax())
    assert hits[0][0] == records[best].doc_id
    assert hits[0][1] == pytest.approx(float(passages[best] @ query_vec), abs=1e-4)
    assert np.allclose(retriever.encode_query(record.question), query_vec.numpy(), atol=1e-5)

    hits = retriever.search_signals(record.question, 5)
    assert set(hits) == {"dense", "base", "dense_questions", "base_questions"}
    base = TextClip.from_pretrained(base_path)
    base_scores = base.encode_passages([passage_text(r) for r in records]) @ base.encode_queries([record.question])[0]
    assert hits["base"][0][1] == pytest.approx(float(base_scores.max()), abs=1e-4)
    # a FAQ's own question is one of its stored questions: the query tower finds it at cosine 1
    for signal in ("dense_questions", "base_questions"):
        assert hits[signal][0] == (record.doc_id, pytest.approx(1.0, abs=1e-4))
        assert len({d for d, _ in hits[signal]}) == len(hits[signal]) == 5


def test_an_untrained_model_as_both_encoders_encodes_everything_once(records, tiny_models, tmp_path):
    _, base_path = tiny_models
    stats = write_dense_index(records, base_path, base_path, tmp_path / "dense")
    assert stats["base_vectors_reused"] and stats["base_question_vectors_reused"]
    retriever = DenseRetriever.load(tmp_path / "dense")
    hits = retriever.search_signals(records[0].question, 3, ["dense_questions", "base_questions"])
    assert hits["dense_questions"] == hits["base_questions"]


def test_question_texts_cover_question_paraphrases_and_labelled_messages(records):
    record = replace(records[0], labelled_messages=("면세 얼마까지 됨?", "800불 넘으면 어케 돼"))
    texts, owners = question_texts([record, *records[1:]])
    asked = [record.question, *(p.text for p in record.paraphrases), *record.labelled_messages]
    assert texts[:len(asked)] == asked
    assert owners.count(record.doc_id) == len(asked)
