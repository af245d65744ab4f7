"""Dense retrieval over the FAQ: how a FAQ becomes vectors, the index build, and query-time search.

An index version's dense part (`write_dense_index`) holds two FAISS stores over the same documents:
the fine-tuned text-CLIP answer vectors (ranking) and the untrained backbone's passage vectors, whose
cosines separate in-domain from out-of-domain messages better than the fine-tuned ones (FINDINGS), for
abstention. It also carries the two query encoders it was built with (hard links, so no disk is
copied), which makes a version self-contained: retraining the model later cannot put query vectors
and stored vectors out of step.

    <dir>/manifest.json    counts, timings, where the models came from, the passage recipe
    <dir>/clip/            the FAISS store of fine-tuned passage vectors (indexer.store)
    <dir>/base/            the FAISS store of base-model passage vectors
    <dir>/clip_model/      the text-CLIP query tower (TextClip layout, answer tower left out)
    <dir>/base_model/      the backbone (a Hugging Face directory)
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
CLIP_MODEL_DIR, BASE_MODEL_DIR = "clip_model", "base_model"


def passage_text(record: FaqRecord) -> str:
    """What the answer tower embeds for one FAQ: its question, then its answer.

    Measured on held-out paraphrases with untrained e5: question + answer top-1 0.657, question alone
    0.517, the max over both 0.613; the answer carries the words people use to describe their case.
    """
    return f"{record.question} {record.answer}"


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
    """Encode every FAQ with the fine-tuned model and the base model; write both stores and encoders.

    Returns counts and timings: {"documents", "vectors", "dim", "clip_encode_s", "base_encode_s", ...}.
    With a locked answer tower (the default training) the fine-tuned passage vectors are the base
    model's, so the passages are encoded once.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    texts = [passage_text(r) for r in records]
    ids = [r.doc_id for r in records]
    clip = TextClip.from_pretrained(clip_model_path).eval()
    base = TextClip.from_pretrained(base_model_path, query_only=True).eval()
    stats: dict = {"documents": len(records), "vectors": len(ids), "dim": clip.dim}

    started = time.perf_counter()
    clip_vectors = clip.encode_passages(texts, progress=True).numpy()
    stats["clip_encode_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    same = same_passage_encoder(clip, base)
    base_vectors = clip_vectors if same else base.encode_passages(texts, progress=True).numpy()
    stats["base_encode_s"] = round(time.perf_counter() - started, 2)
    stats["base_vectors_reused"] = same

    for name, vectors, model_path, model_dir in ((CLIP_STORE, clip_vectors, clip_model_path, CLIP_MODEL_DIR),
                                                 (BASE_STORE, base_vectors, base_model_path, BASE_MODEL_DIR)):
        store = VectorStore.build(vectors, ids, store_settings)
        store.save(out_dir / name)
        stats[f"{name}_index"] = store.kind
        link_tree(Path(model_path), out_dir / model_dir, skip=(ANSWER_DIR, "checkpoint"))
    manifest = {**stats, "clip_model": str(clip_model_path), "base_model": str(base_model_path),
                "passage": "question + ' ' + answer"}
    (out_dir / MANIFEST_FILE).write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    log.info("dense index: %s", stats)
    return stats


def same_passage_encoder(clip: TextClip, base: TextClip) -> bool:
    """True when `clip` embeds passages exactly as `base` does (same weights, prefix and length)."""
    a, b = clip.settings, base.settings
    if (a.passage_prefix, a.passage_max_length) != (b.passage_prefix, b.passage_max_length):
        return False
    ours, theirs = clip.answer_tower.state_dict(), base.query_encoder.state_dict()
    return ours.keys() == theirs.keys() and all(torch.equal(ours[k], theirs[k]) for k in ours)


class DenseRetriever:
    """Query-time dense search over one index version: fine-tuned ranking and base-model cosines."""

    def __init__(self, clip: TextClip, base: TextClip, clip_store: VectorStore, base_store: VectorStore):
        self.clip, self.base = clip.eval(), base.eval()
        self.clip_store, self.base_store = clip_store, base_store

    @classmethod
    def load(cls, version_dir: Path, clip_model_path: str | Path | None = None, torch_threads: int = 1,
             store_settings: StoreSettings | None = None) -> "DenseRetriever":
        """Load a dense index directory; `clip_model_path` overrides the query tower it was built with."""
        torch.set_num_threads(torch_threads)
        version_dir = Path(version_dir)
        clip = TextClip.from_pretrained(clip_model_path or version_dir / CLIP_MODEL_DIR, query_only=True)
        base = TextClip.from_pretrained(version_dir / BASE_MODEL_DIR, query_only=True)
        share_frozen_vocabulary(clip, base)
        return cls(clip, base, VectorStore.load(version_dir / CLIP_STORE, store_settings),
                   VectorStore.load(version_dir / BASE_STORE, store_settings))

    def encode_query(self, text: str) -> np.ndarray:
        """The fine-tuned query vector (dim,), unit length."""
        return encode_one_query(self.clip, text)

    def search(self, text: str, k: int) -> list[tuple[str, float]]:
        """Up to k (doc_id, cosine) by the fine-tuned model, best first."""
        return self.clip_store.search(self.encode_query(text), k)[0]

    def search_base(self, text: str, k: int) -> list[tuple[str, float]]:
        """Up to k (doc_id, cosine) by the untrained backbone (for abstention), best first."""
        return self.base_store.search(encode_one_query(self.base, text), k)[0]


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
