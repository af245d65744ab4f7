"""Dense retrieval over the FAQ: how a FAQ becomes vectors, the index build, and query-time search.

An index version's dense part (`write_dense_index`) holds four FAISS stores over the same documents,
two per encoder (the fine-tuned text-CLIP query tower, and the untrained backbone, whose cosines
separate in-domain from out-of-domain messages better than the fine-tuned ones, FINDINGS):

- passages: each FAQ's question + answer, through the answer tower (query -> passage matching);
- questions: each FAQ's question, paraphrases and labelled user messages, through the *query* tower,
  several rows per FAQ (query -> known question matching: a message is closest to the way others
  asked the same thing).
  Measured in the hybrid fusion: +3 (fine-tuned) and +1 (backbone) points of hard top-1.

It also carries the two query encoders it was built with (hard links, so no disk is copied), which
makes a version self-contained: retraining the model later cannot put query vectors and stored
vectors out of step.

    <dir>/manifest.json          counts, timings, where the models came from, the passage recipe
    <dir>/clip/, <dir>/base/     passage vectors of the fine-tuned / base model (indexer.store)
    <dir>/clip_questions/, <dir>/base_questions/   question vectors of the fine-tuned / base query tower
    <dir>/clip_model/            the text-CLIP query tower (TextClip layout, answer tower left out)
    <dir>/base_model/            the backbone (a Hugging Face directory)
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from indexer.encoder import ANSWER_DIR, TextClip
from indexer.store import StoreSettings, VectorStore
from trainers.data import FaqRecord

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
CLIP_STORE, BASE_STORE = "clip", "base"
QUESTIONS_SUFFIX = "_questions"
# The dense signals a DenseRetriever answers: signal -> (encoder, store directory).
SIGNAL_STORES = {
    "dense": (CLIP_STORE, CLIP_STORE),
    "base": (BASE_STORE, BASE_STORE),
    "dense_questions": (CLIP_STORE, CLIP_STORE + QUESTIONS_SUFFIX),
    "base_questions": (BASE_STORE, BASE_STORE + QUESTIONS_SUFFIX),
}
CLIP_MODEL_DIR, BASE_MODEL_DIR = "clip_model", "base_model"


def passage_text(record: FaqRecord) -> str:
    """What the answer tower embeds for one FAQ: its question, then its answer.

    Measured on held-out paraphrases with untrained e5: question + answer top-1 0.657, question alone
    0.517, the max over both 0.613; the answer carries the words people use to describe their case.
    """
    return f"{record.question} {record.answer}"


def question_texts(records: Sequence[FaqRecord]) -> tuple[list[str], list[str]]:
    """Every way each FAQ has been asked (question, paraphrases, labelled messages) and its doc id."""
    pairs = [(text, r.doc_id) for r in records
             for text in (r.question, *(p.text for p in r.paraphrases), *r.labelled_messages)]
    return [t for t, _ in pairs], [d for _, d in pairs]


def link_tree(source: Path, target: Path, skip: Sequence[str] = ()) -> None:
    """Copy a directory tree as hard links (same inode, no bytes copied), falling back to copies.

    Safe because models are never modified in place: trainers write a new directory and swap it in.
    """
    for path in sorted(Path(source).rglob("*")):
        rel = path.relative_to(source)
        if rel.parts and rel.parts[0] in skip:
            continue
        dest = Path(target) / rel
        if path.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(path, dest)
        except OSError:
            shutil.copy2(path, dest)


def write_dense_index(records: Sequence[FaqRecord], clip_model_path: str | Path, base_model_path: str | Path,
                      out_dir: Path, store_settings: StoreSettings | None = None) -> dict:
    """Encode every FAQ with the fine-tuned model and the base model; write the stores and encoders.

    Returns counts and timings: {"documents", "vectors", "question_vectors", "dim", "clip_encode_s", ...}.
    With a locked answer tower (the default training) the fine-tuned passage vectors are the base
    model's, so the passages are encoded once.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = [passage_text(r) for r in records]
    ids = [r.doc_id for r in records]
    questions, question_ids = question_texts(records)
    clip = TextClip.from_pretrained(clip_model_path).eval()
    base = TextClip.from_pretrained(base_model_path, query_only=True).eval()
    stats: dict = {"documents": len(records), "vectors": len(ids), "question_vectors": len(questions),
                   "dim": clip.dim}

    started = time.perf_counter()
    clip_vectors = clip.encode_passages(texts, progress=True).numpy()
    stats["clip_encode_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    same = same_encoding(clip, base, is_query=False)
    base_vectors = clip_vectors if same else base.encode_passages(texts, progress=True).numpy()
    stats["base_encode_s"] = round(time.perf_counter() - started, 2)
    stats["base_vectors_reused"] = same
    started = time.perf_counter()
    clip_questions = clip.encode_queries(questions, progress=True).numpy()
    same = same_encoding(clip, base, is_query=True)
    question_vectors = {CLIP_STORE: clip_questions,
                        BASE_STORE: clip_questions if same else base.encode_queries(questions, progress=True).numpy()}
    stats["questions_encode_s"] = round(time.perf_counter() - started, 2)
    stats["base_question_vectors_reused"] = same

    for name, vectors, model_path, model_dir in ((CLIP_STORE, clip_vectors, clip_model_path, CLIP_MODEL_DIR),
                                                 (BASE_STORE, base_vectors, base_model_path, BASE_MODEL_DIR)):
        store = VectorStore.build(vectors, ids, store_settings)
        store.save(out_dir / name)
        stats[f"{name}_index"] = store.kind
        VectorStore.build(question_vectors[name], question_ids, store_settings).save(out_dir / (name + QUESTIONS_SUFFIX))
        link_tree(Path(model_path), out_dir / model_dir, skip=(ANSWER_DIR, "checkpoint"))
    manifest = {**stats, "clip_model": str(clip_model_path), "base_model": str(base_model_path),
                "passage": "question + ' ' + answer",
                "questions": "question, paraphrases and labelled messages, query tower"}
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    log.info("dense index: %s", stats)
    return stats


def same_encoding(clip: TextClip, base: TextClip, is_query: bool) -> bool:
    """True when `clip` embeds queries (or passages) exactly as `base` does: same weights, prefix and
    length. Then the vectors are encoded once (untrained runs, tests; the locked answer tower)."""
    a, b = clip.settings, base.settings
    if is_query:
        mine, theirs = (a.query_prefix, a.query_max_length), (b.query_prefix, b.query_max_length)
        tower = clip.query_encoder
    else:
        mine, theirs = (a.passage_prefix, a.passage_max_length), (b.passage_prefix, b.passage_max_length)
        tower = clip.answer_tower
    if mine != theirs:
        return False
    ours, others = tower.state_dict(), base.query_encoder.state_dict()
    return ours.keys() == others.keys() and all(torch.equal(ours[k], others[k]) for k in ours)


class DenseRetriever:
    """Query-time dense search over one index version: one query vector per encoder, four stores."""

    def __init__(self, clip: TextClip, base: TextClip, stores: dict[str, VectorStore]):
        self.clip, self.base = clip.eval(), base.eval()
        self.stores = stores  # signal -> store, as SIGNAL_STORES

    @classmethod
    def load(cls, version_dir: Path, clip_model_path: str | Path | None = None, torch_threads: int = 1,
             store_settings: StoreSettings | None = None) -> "DenseRetriever":
        """Load a dense index directory; `clip_model_path` overrides the query tower it was built with."""
        torch.set_num_threads(torch_threads)
        version_dir = Path(version_dir)
        clip = TextClip.from_pretrained(clip_model_path or version_dir / CLIP_MODEL_DIR, query_only=True)
        base = TextClip.from_pretrained(version_dir / BASE_MODEL_DIR, query_only=True)
        share_frozen_vocabulary(clip, base)
        stores = {signal: VectorStore.load(version_dir / store, store_settings)
                  for signal, (_, store) in SIGNAL_STORES.items()}
        return cls(clip, base, stores)

    def encode_query(self, text: str) -> np.ndarray:
        """The fine-tuned query vector (dim,), unit length."""
        return encode_one_query(self.clip, text)

    def search(self, text: str, k: int) -> list[tuple[str, float]]:
        """Up to k (doc_id, cosine) by the fine-tuned model against the passages, best first."""
        return self.search_signals(text, k, ("dense",))["dense"]

    def search_signals(self, text: str, k: int, signals: Sequence[str] = tuple(SIGNAL_STORES),
                       timings: dict[str, float] | None = None) -> dict[str, list[tuple[str, float]]]:
        """Up to k (doc_id, cosine) per dense signal, best first; each encoder runs at most once.

        `timings`, when given, receives the milliseconds spent encoding ("encode") and searching
        the FAISS stores ("search").
        """
        encoders = {CLIP_STORE: self.clip, BASE_STORE: self.base}
        started = time.perf_counter()
        vectors = {name: encode_one_query(encoders[name], text)
                   for name in dict.fromkeys(SIGNAL_STORES[s][0] for s in signals)}
        encoded = time.perf_counter()
        hits = {s: self.stores[s].search(vectors[SIGNAL_STORES[s][0]], k)[0] for s in signals}
        if timings is not None:
            timings["encode"] = (encoded - started) * 1000
            timings["search"] = (time.perf_counter() - encoded) * 1000
        return hits


@torch.inference_mode()
def encode_one_query(model: TextClip, text: str) -> np.ndarray:
    """One query's unit vector (dim,): the single-message path, without encode()'s batching work."""
    batch = model.tokenize([text], is_query=True)
    return model.embed(batch, is_query=True)[0].numpy()


def share_frozen_vocabulary(clip: TextClip, base: TextClip) -> bool:
    """Point the fine-tuned model at the base model's vocabulary matrix when they are equal.

    Training keeps the 250k x 384 word embeddings frozen, so both query towers hold the same 384 MB
    matrix; sharing it halves the memory each worker needs for the two encoders.
    """
    ours = clip.query_encoder.get_input_embeddings()
    theirs = base.query_encoder.get_input_embeddings()
    if ours.weight.shape != theirs.weight.shape or not torch.equal(ours.weight, theirs.weight):
        return False
    clip.query_encoder.set_input_embeddings(theirs)
    return True
