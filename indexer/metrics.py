"""Ranking metrics shared by the trainer's per-epoch report and `flask eval retrieval`."""
from __future__ import annotations

from typing import Sequence

TOP_KS = (1, 5, 10)
MRR_CUTOFF = 10


def evaluate_ranking(ranked: Sequence[Sequence[str]], gold: Sequence[str | None]) -> dict:
    """top1/top5/top10 (fraction of queries whose FAQ is in the first k) and mrr10, over the queries
    that have a gold doc_id; out-of-domain queries (gold None) are left to the abstention metrics.

    Returns `{"n": count, "top1": .., "top5": .., "top10": .., "mrr10": ..}` (zeros when n == 0).
    """
    if len(ranked) != len(gold):
        raise ValueError(f"{len(ranked)} rankings for {len(gold)} gold labels")
    hits = {k: 0 for k in TOP_KS}
    reciprocal_rank = 0.0
    n = 0
    for docs, answer in zip(ranked, gold):
        if answer is None:
            continue
        n += 1
        rank = next((i + 1 for i, doc in enumerate(docs) if doc == answer), None)
        if rank is None:
            continue
        for k in TOP_KS:
            hits[k] += rank <= k
        if rank <= MRR_CUTOFF:
            reciprocal_rank += 1.0 / rank
    metrics = {"n": n}
    metrics.update({f"top{k}": hits[k] / n if n else 0.0 for k in TOP_KS})
    metrics["mrr10"] = reciprocal_rank / n if n else 0.0
    return metrics
