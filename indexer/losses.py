"""Contrastive loss for the text-CLIP dual encoder (sentence-transformers style: one small nn.Module)."""
from __future__ import annotations

import torch
from torch import nn


class SymmetricInfoNCELoss(nn.Module):
    """CLIP's symmetric InfoNCE over in-batch negatives, allowing several queries per passage.

    Input: unit query vectors `q` (B, d), unit passage vectors `p` (P, d), a logit scale (1 / temperature)
    and `targets` (B,) giving each query's passage row. Every other passage in the batch is a negative
    for a query (query -> passage softmax over P); for a passage, every query of another passage is a
    negative and all of its own queries are positives (passage -> query softmax over B, the positives'
    probabilities summed). Why it works: the encoder must pull each query closer to its own answer
    than to every other answer it is shown, and with batches drawn from one corpus partition those
    others are the hardest ones (same topic, different question). With one query per passage this is
    exactly CLIP's loss.
    """

    def __init__(self, query_weight: float = 0.5):
        super().__init__()
        self.query_weight = query_weight

    def forward(self, q: torch.Tensor, p: torch.Tensor, logit_scale: torch.Tensor,
                targets: torch.Tensor) -> torch.Tensor:
        logits = logit_scale * q @ p.T  # (B, P)
        query_to_passage = nn.functional.cross_entropy(logits, targets)
        positive = nn.functional.one_hot(targets, num_classes=p.shape[0]).T.bool()  # (P, B)
        per_passage = logits.T.log_softmax(dim=1)  # (P, B): each passage's distribution over queries
        has_query = positive.any(dim=1)
        own = per_passage.masked_fill(~positive, float("-inf")).logsumexp(dim=1)
        passage_to_query = -own[has_query].mean()
        return self.query_weight * query_to_passage + (1 - self.query_weight) * passage_to_query

    def get_config_dict(self) -> dict[str, float]:
        return {"query_weight": self.query_weight}
