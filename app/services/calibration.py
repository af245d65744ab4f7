"""Fitting the fusion calibrator of an index version on labelled messages.

The messages are the hand-written tuning set (`data/tune/tune_queries.jsonl`: realistic in-domain
messages and out-of-domain ones, never used to train any encoder) plus chit-chat questions as extra
small talk. The shared development sets (`dev_queries*.jsonl`) are never used here: they stay the
held-out test of the whole pipeline.
"""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from app.services.fusion import Calibrator, candidate_features
from app.services.pipeline import HybridRetriever
from trainers.data import Query, read_jsonl, read_queries

CHITCHAT_SAMPLE = 150
CHITCHAT_SEED = 7


def calibration_queries(tune_file: Path, chitchat_file: Path | None) -> list[Query]:
    """The tuning messages plus a reproducible sample of chit-chat questions (out of domain)."""
    queries = read_queries(tune_file)
    if chitchat_file is not None and chitchat_file.exists():
        chitchat = [Query(o["q"], None) for o in read_jsonl(chitchat_file)]
        queries += random.Random(CHITCHAT_SEED).sample(chitchat, min(CHITCHAT_SAMPLE, len(chitchat)))
    return queries


def fit_calibrator(retriever: HybridRetriever, queries: list[Query]) -> tuple[Calibrator, dict]:
    """Collect every query's candidates and fit P(candidate is the gold FAQ)."""
    unfitted = HybridRetriever(retriever.index, retriever.keyword_fn, replace(retriever.settings, fusion="rrf"))
    features, labels = [], []
    for query in tqdm(queries, desc="calibrating", unit="msg"):
        candidates = unfitted.retrieve(query.text).candidates
        if not candidates:
            continue
        features.append(candidate_features(candidates))
        labels.append(np.array([c.doc_id == query.doc_id for c in candidates], dtype=np.int64))
    calibrator = Calibrator.fit(features, labels)
    in_domain = sum(1 for q in queries if q.doc_id)
    return calibrator, {"messages": len(queries), "in_domain": in_domain, "out_of_domain": len(queries) - in_domain}
