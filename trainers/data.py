"""The FAQ corpus as plain records, and the held-out split every trainer and eval agrees on.

Trainers receive these records (the admin CLI reads them from the database); they never talk to the
database themselves. The split holds out one paraphrase per FAQ: the held-out paraphrases are never
trained on by any model and are the default retrieval evaluation set.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Iterator

HELDOUT_SEED = 13


@dataclass(frozen=True)
class Paraphrase:
    text: str
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class FaqRecord:
    """One FAQ entry. `doc_id` is the stable external id (`T-001`) used everywhere."""

    doc_id: str
    category: str
    question: str
    answer: str
    keywords: tuple[str, ...] = ()
    paraphrases: tuple[Paraphrase, ...] = field(default_factory=tuple)
    # Messages written the way users write, labelled with this FAQ (no keyword labels).
    labelled_messages: tuple[str, ...] = ()

    @property
    def partition(self) -> str:
        """The corpus partition (T, D, M, B, G): the id's prefix."""
        return self.doc_id.split("-", 1)[0]


@dataclass(frozen=True)
class Query:
    """A message and the FAQ that answers it (None: out of domain)."""

    text: str
    doc_id: str | None
    keywords: tuple[str, ...] = ()


def faq_from_json(obj: dict) -> FaqRecord:
    """Build a record from one `faq_*.jsonl` object (raises KeyError/TypeError on a bad shape)."""
    return FaqRecord(
        doc_id=obj["id"],
        category=obj["category"],
        question=obj["question"],
        answer=obj["answer"],
        keywords=tuple(obj.get("keywords", ())),
        paraphrases=tuple(Paraphrase(p["text"], tuple(p.get("keywords", ()))) for p in obj.get("paraphrases", ())),
    )


def read_jsonl(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def read_queries(path: Path) -> list[Query]:
    """Evaluation messages: JSON Lines of {"query", "doc_id" | null}."""
    return [Query(o["query"], o.get("doc_id")) for o in read_jsonl(path)]


def heldout_split(records: Iterable[FaqRecord], seed: int = HELDOUT_SEED) -> tuple[list[FaqRecord], list[Query]]:
    """Hold out one paraphrase per FAQ (chosen reproducibly); return (training records, held-out queries).

    The training records keep their question, the other paraphrases and their labelled messages.
    """
    rng = random.Random(seed)
    train: list[FaqRecord] = []
    heldout: list[Query] = []
    for rec in sorted(records, key=lambda r: r.doc_id):
        if len(rec.paraphrases) < 2:
            train.append(rec)
            continue
        i = rng.randrange(len(rec.paraphrases))
        held = rec.paraphrases[i]
        heldout.append(Query(held.text, rec.doc_id, held.keywords))
        rest = rec.paraphrases[:i] + rec.paraphrases[i + 1:]
        train.append(replace(rec, paraphrases=rest))
    return train, heldout
