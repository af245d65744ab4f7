"""Trainer of the text-CLIP retriever (seed 000): contrastive fine-tuning of multilingual-e5-small.

Pairs are (user-style query, FAQ passage): the FAQ's own question, its paraphrases and a sample of its
labelled messages (written the way users write), made more varied each epoch by augmentation (synonym
substitution from the corpus's synonym groups, spacing and typing noise, answer sentences and keyword
strings as pseudo-queries). One paraphrase per FAQ (`trainers.data.heldout_split`) is never trained
on: top-1/5/10 on it is printed every epoch, like the seed's report, and picks the best epoch.

Batches hold the queries of one corpus partition (T, D, M, B, G), so the in-batch negatives are FAQs on
the same topic: the confusions retrieval actually has to resolve. The towers are configurable
(`towers`): `shared` (one encoder for both sides), `separate` (two encoders, both trained) or `locked`
(the answer tower stays the base model, so FAQ passages are encoded once and only the query tower
trains: the cheapest way to fine-tune on CPU). The vocabulary matrix is always frozen.
"""
from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from indexer.dense import passage_text
from indexer.encoder import TextClip
from indexer.losses import SymmetricInfoNCELoss
from indexer.metrics import evaluate_ranking
from trainers.data import FaqRecord, Query, heldout_split

TOWERS = ("shared", "separate", "locked")
EVAL_TOP_K = 10
SENTENCE_END = re.compile(r"(?<=[.?!])\s+")
MIN_PSEUDO_QUERY_CHARS = 8  # shorter answer fragments ("네.") say nothing about the FAQ


@dataclass
class ClipTaskSettings:
    """What the task does beyond the loop's TrainConfig (saved in the run's config.json)."""

    base_model: str
    towers: str = "locked"
    batch_queries: int = 64  # queries per batch, all from one partition
    temperature: float = 0.05
    synonym_prob: float = 0.5  # chance a query has one synonym-group term swapped
    noise_prob: float = 0.3  # chance a query gets spacing / typing noise
    pseudo_queries_per_faq: int = 1  # answer sentences added as queries, per FAQ and epoch
    keyword_queries_per_faq: int = 1  # FAQ keyword strings added as queries, per FAQ and epoch
    labelled_messages_per_faq: int = 2  # labelled user messages drawn per FAQ and epoch
    seed: int = 0


# --- augmentation ------------------------------------------------------------------------------

def substitute_synonym(text: str, groups: Sequence[Sequence[str]], rng: random.Random) -> str:
    """Swap one synonym-group term found in `text` for another term of its group (or return text)."""
    found = [(term, group) for group in groups for term in group if term in text and len(group) > 1]
    if not found:
        return text
    term, group = rng.choice(found)
    return text.replace(term, rng.choice([t for t in group if t != term]), 1)


def add_noise(text: str, rng: random.Random) -> str:
    """One typing slip of the kind users make: a dropped or added space, a dropped or doubled char."""
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    kind = rng.randrange(4)
    if kind == 0 and " " in text:
        spaces = [j for j, ch in enumerate(text) if ch == " "]
        j = rng.choice(spaces)
        return text[:j] + text[j + 1:]
    if kind == 1:
        return text[:i] + " " + text[i:]
    if kind == 2:
        return text[:i] + text[i + 1:]
    return text[:i] + text[i] + text[i:]


def answer_sentences(answer: str) -> list[str]:
    return [s for s in SENTENCE_END.split(answer) if len(s) >= MIN_PSEUDO_QUERY_CHARS]


def keyword_query(record: FaqRecord, rng: random.Random) -> str | None:
    """Some of the FAQ's keywords in random order: the terse way people type into a search box."""
    if not record.keywords:
        return None
    words = list(record.keywords)
    rng.shuffle(words)
    return " ".join(words[: rng.randint(1, len(words))])


def training_queries(record: FaqRecord, groups: Sequence[Sequence[str]], settings: ClipTaskSettings,
                     rng: random.Random) -> list[str]:
    """One epoch's queries for one FAQ: its question, paraphrases and a sample of its labelled messages
    (augmented), plus pseudo-queries."""
    queries = []
    messages = rng.sample(record.labelled_messages,
                          min(settings.labelled_messages_per_faq, len(record.labelled_messages)))
    for text in [record.question, *(p.text for p in record.paraphrases), *messages]:
        if rng.random() < settings.synonym_prob:
            text = substitute_synonym(text, groups, rng)
        if rng.random() < settings.noise_prob:
            text = add_noise(text, rng)
        queries.append(text)
    sentences = answer_sentences(record.answer)
    queries += rng.sample(sentences, min(settings.pseudo_queries_per_faq, len(sentences)))
    for _ in range(settings.keyword_queries_per_faq):
        extra = keyword_query(record, rng)
        if extra:
            queries.append(extra)
    return queries


# --- batches -----------------------------------------------------------------------------------

@dataclass
class PairBatch:
    """Queries of one partition, the distinct FAQs they belong to, and each query's FAQ row."""

    queries: list[str]
    doc_ids: list[str]
    targets: list[int]


def partition_batches(records: Sequence[FaqRecord], groups: Sequence[Sequence[str]],
                      settings: ClipTaskSettings, rng: random.Random) -> list[PairBatch]:
    by_partition: dict[str, list[tuple[str, str]]] = {}
    for record in records:
        for text in training_queries(record, groups, settings, rng):
            by_partition.setdefault(record.partition, []).append((text, record.doc_id))
    batches = []
    for pairs in by_partition.values():
        rng.shuffle(pairs)
        for start in range(0, len(pairs), settings.batch_queries):
            chunk = pairs[start:start + settings.batch_queries]
            doc_ids = list(dict.fromkeys(doc for _, doc in chunk))
            row = {doc: i for i, doc in enumerate(doc_ids)}
            batches.append(PairBatch([q for q, _ in chunk], doc_ids, [row[d] for _, d in chunk]))
    return batches


class BatchList(Dataset):
    """The task builds whole batches (one partition each), so the loop samples batches, one per step."""

    def __init__(self, batches: list[PairBatch]):
        self.batches = batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> PairBatch:
        return self.batches[i]


# --- evaluation ----------------------------------------------------------------------------------

def rank_documents(query_vectors: torch.Tensor, passage_vectors: torch.Tensor, doc_ids: Sequence[str],
                   k: int = EVAL_TOP_K) -> list[list[str]]:
    top = (query_vectors @ passage_vectors.T).topk(min(k, len(doc_ids)), dim=1).indices
    return [[doc_ids[i] for i in row] for row in top.tolist()]


def evaluate_model(model: TextClip, records: Sequence[FaqRecord], queries: Sequence[Query],
                   passage_vectors: torch.Tensor | None = None) -> dict:
    """top1/top5/top10/mrr10 of `queries` against every FAQ passage (exact cosine search)."""
    if passage_vectors is None:
        passage_vectors = model.encode_passages([passage_text(r) for r in records])
    ranked = rank_documents(model.encode_queries([q.text for q in queries]), passage_vectors,
                            [r.doc_id for r in records])
    return evaluate_ranking(ranked, [q.doc_id for q in queries])


# --- the task ------------------------------------------------------------------------------------

class ClipTask:
    """The text-CLIP task for `trainers.loop.train` (the loop's batch_size must be 1: one PairBatch)."""

    selection_metric = "mrr10"
    higher_is_better = True

    def __init__(self, model: TextClip, records: Sequence[FaqRecord], synonym_groups: Sequence[Sequence[str]],
                 settings: ClipTaskSettings):
        self.model = model
        self.settings = settings
        self.loss_fn = SymmetricInfoNCELoss()
        self.train_records, self.heldout = heldout_split(records)
        self.all_records = sorted(records, key=lambda r: r.doc_id)
        self.groups = [list(g) for g in synonym_groups]
        self.passages = {r.doc_id: passage_text(r) for r in self.all_records}
        self._epochs_built = 0
        self._locked_vectors: dict[str, torch.Tensor] | None = None
        if settings.towers == "locked":
            model.answer_encoder.requires_grad_(False)
            vectors = model.encode_passages(list(self.passages.values()), progress=True)
            self._locked_vectors = dict(zip(self.passages, vectors))

    @classmethod
    def from_base(cls, records: Sequence[FaqRecord], synonym_groups: Sequence[Sequence[str]],
                  settings: ClipTaskSettings) -> "ClipTask":
        model = TextClip.from_pretrained(settings.base_model, shared=settings.towers == "shared",
                                         temperature=settings.temperature, logit_scale=None)
        model.freeze_word_embeddings()
        return cls(model, records, synonym_groups, settings)

    def config(self) -> dict:
        return {**asdict(self.settings), "loss": type(self.loss_fn).__name__, **self.loss_fn.get_config_dict()}

    def train_dataset(self) -> Dataset:
        # The loop asks for the data set once for its size and once per epoch: every call re-draws
        # the augmentation (same number of batches), seeded so that a run is reproducible.
        rng = random.Random(f"{self.settings.seed}-{self._epochs_built}")
        self._epochs_built += 1
        return BatchList(partition_batches(self.train_records, self.groups, self.settings, rng))

    def collate(self, items: list[PairBatch]) -> dict:
        (batch,) = items
        out = {"queries": self.model.tokenize(batch.queries, is_query=True),
               "targets": torch.tensor(batch.targets)}
        if self._locked_vectors is not None:
            out["passages"] = torch.stack([self._locked_vectors[d] for d in batch.doc_ids])
        else:
            out["passages"] = self.model.tokenize([self.passages[d] for d in batch.doc_ids], is_query=False)
        return out

    def loss(self, model: nn.Module, batch: dict) -> torch.Tensor:
        q, p, scale = model(batch["queries"], batch["passages"])
        return self.loss_fn(q, p, scale, batch["targets"])

    def evaluate(self) -> dict[str, float]:
        vectors = None
        if self._locked_vectors is not None:
            vectors = torch.stack([self._locked_vectors[r.doc_id] for r in self.all_records])
        metrics = evaluate_model(self.model, self.all_records, self.heldout, vectors)
        metrics.pop("n")
        metrics["temperature"] = float(1.0 / self.model.logit_scale.exp())
        return metrics

    def save(self, path: Path) -> None:
        self.model.save_pretrained(path)
