"""Training and evaluation of the review analyzer (seed 003), both backends.

Data: `data/reviews/reviews.jsonl` (600 reviews, GUIDE.md). `split_reviews` holds out 100 reviews
(fixed seed) that no model trains or tunes on: they are what `flask eval review` reports.

- Linear (default): logistic-regression heads fitted with scikit-learn in seconds. The aspect
  thresholds are tuned on out-of-fold probabilities of the training reviews (cross-validation), so no
  training review has to be given up for tuning. The sentiment head learns from the gold evidence word's
  surroundings; at inference the highlight takes its place.
- Transformer: two `AutoModelForSequenceClassification` tasks on the shared loop (`trainers.loop`),
  validated (early stopping, aspect threshold) on reviews split off the training part.
"""
from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import KFold
from torch import nn

from app.services.review import (
    ASPECTS,
    SENTIMENTS,
    AspectDecision,
    LinearFeaturizer,
    LinearReviewModel,
    LinearSettings,
    ReviewAnalyzer,
    SentimentQuery,
    TextEmbedder,
    TransformerReviewModel,
    TransformerSettings,
    context_window,
    embed,
    eojeols,
    load_classifier,
    morpheme_document,
    sentiment_features,
    sentiment_prompt,
)
from trainers.data import HELDOUT_SEED, read_jsonl
from trainers.loop import TrainConfig, train
from trainers.tokenizer import train_tokenizer

HELDOUT_REVIEWS = 100
# Transformer path: reviews of the training part kept for early stopping and the aspect threshold.
VALIDATION_REVIEWS = 60
CV_FOLDS = 5
THRESHOLD_GRID = tuple(np.round(np.arange(0.05, 0.951, 0.025), 3))
# Iterations for lbfgs on the sparse TF-IDF + embedding matrices (the default 100 stops short).
LR_MAX_ITER = 3000

Log = Callable[[str], None]


# --- data -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewRecord:
    """One labelled review: aspect -> sentiment (-2..2) and aspect -> evidence eojeol (GUIDE.md)."""

    review_id: str
    text: str
    aspects: dict[str, int]
    evidence: dict[str, str]

    def evidence_index(self, aspect: str) -> int:
        """Position of the aspect's evidence among the review's eojeols (0 when it is not one)."""
        words = eojeols(self.text)
        evidence = self.evidence.get(aspect)
        return words.index(evidence) if evidence in words else 0


def review_from_json(obj: dict) -> ReviewRecord:
    """A record from one reviews.jsonl object; rejects unknown aspects and out-of-range sentiments."""
    aspects = {str(a): int(s) for a, s in obj["aspects"].items()}
    unknown = set(aspects) - set(ASPECTS)
    if unknown:
        raise ValueError(f"review {obj.get('id')}: unknown aspects {sorted(unknown)}")
    if any(s not in SENTIMENTS for s in aspects.values()):
        raise ValueError(f"review {obj.get('id')}: sentiment outside -2..2")
    return ReviewRecord(str(obj["id"]), str(obj["text"]), aspects, dict(obj.get("evidence", {})))


def read_reviews(path: Path) -> list[ReviewRecord]:
    return [review_from_json(obj) for obj in read_jsonl(path)]


def split_reviews(records: Sequence[ReviewRecord], n_heldout: int = HELDOUT_REVIEWS,
                  seed: int = HELDOUT_SEED) -> tuple[list[ReviewRecord], list[ReviewRecord]]:
    """(training, held-out): `n_heldout` reviews chosen reproducibly, never trained or tuned on."""
    order = list(range(len(records)))
    random.Random(seed).shuffle(order)
    held = set(order[:n_heldout])
    return [r for i, r in enumerate(records) if i not in held], [records[i] for i in order[:n_heldout]]


def aspect_labels(records: Sequence[ReviewRecord]) -> np.ndarray:
    """(n, 15) 0/1 matrix: which aspects each review rates."""
    return np.array([[int(a in r.aspects) for a in ASPECTS] for r in records], dtype=int).reshape(-1, len(ASPECTS))


def sentiment_pairs(records: Sequence[ReviewRecord]) -> list[tuple[SentimentQuery, int]]:
    """(query, gold sentiment) per labelled aspect; the query's highlight is the gold evidence."""
    return [(SentimentQuery(r.text, aspect, r.evidence_index(aspect)), score)
            for r in records for aspect, score in r.aspects.items()]


# --- the aspect decision ------------------------------------------------------------------------------


def micro_macro_f1(gold: np.ndarray, predicted: np.ndarray) -> tuple[float, float]:
    """Micro-F1 over all (review, aspect) decisions; macro-F1 over the aspects that occur in `gold`."""
    present = [j for j in range(gold.shape[1]) if gold[:, j].any()]
    micro = f1_score(gold, predicted, average="micro", zero_division=0)
    macro = f1_score(gold[:, present], predicted[:, present], average="macro", zero_division=0) if present else 0.0
    return float(micro), float(macro)


def decide(probabilities: np.ndarray, decision: AspectDecision) -> np.ndarray:
    predicted = np.zeros(probabilities.shape, dtype=int)
    for i, row in enumerate(probabilities):
        predicted[i, decision.select(row)] = 1
    return predicted


def tune_decision(gold: np.ndarray, probabilities: np.ndarray, min_aspects: int = 1) -> AspectDecision:
    """The one threshold (shared by all aspects) that maximises micro-F1 on held-apart probabilities.

    One shared threshold: with 30-60 positives per aspect, per-aspect thresholds fit noise (measured
    in cross-validation, see README)."""
    def score(t: float) -> float:
        return micro_macro_f1(gold, decide(probabilities, AspectDecision([t] * len(ASPECTS), min_aspects)))[0]

    best = max(THRESHOLD_GRID, key=score)
    return AspectDecision([float(best)] * len(ASPECTS), min_aspects)


# --- the linear backend -------------------------------------------------------------------------------


def fit_binary(features, labels: np.ndarray, c: float):
    """A class-balanced logistic regression; a constant predictor when only one class occurs (an
    aspect missing from a small training set must not stop training)."""
    if len(np.unique(labels)) < 2:
        return DummyClassifier(strategy="prior").fit(features, labels)
    return LogisticRegression(C=c, class_weight="balanced", max_iter=LR_MAX_ITER).fit(features, labels)


def fit_featurizer(records: Sequence[ReviewRecord], settings: LinearSettings) -> LinearFeaturizer:
    """Vectorizers fitted on the training reviews (and on the evidence windows, for the sentiment head)."""
    texts = [r.text for r in records]
    windows = [context_window(eojeols(q.text), q.highlight_index, settings.window_radius)
               for q, _ in sentiment_pairs(records)]

    def chars() -> TfidfVectorizer:
        return TfidfVectorizer(analyzer="char_wb", ngram_range=(1, settings.char_ngram_max), sublinear_tf=True)

    def morphemes() -> TfidfVectorizer:
        return TfidfVectorizer(analyzer="word", token_pattern=r"\S+", lowercase=False,
                               ngram_range=(1, settings.morph_ngram_max), sublinear_tf=True)

    return LinearFeaturizer(chars().fit(texts), morphemes().fit([morpheme_document(t) for t in texts]),
                            chars().fit(windows), morphemes().fit([morpheme_document(w) for w in windows]))


def fit_aspect_heads(featurizer: LinearFeaturizer, records: Sequence[ReviewRecord], embeddings: np.ndarray,
                     settings: LinearSettings) -> list:
    """One balanced binary head per aspect (`embeddings`: the records' e5 rows, precomputed)."""
    matrix = featurizer.aspect_matrix([r.text for r in records], embeddings, settings.aspect_embedding_weight)
    gold = aspect_labels(records)
    return [fit_binary(matrix, gold[:, j], settings.aspect_c) for j in range(len(ASPECTS))]


def fit_sentiment_heads(featurizer: LinearFeaturizer, records: Sequence[ReviewRecord], embeddings: np.ndarray,
                        settings: LinearSettings) -> list:
    """Ordinal heads P(sentiment > k), one per boundary between consecutive levels, on gold aspects."""
    pairs = sentiment_pairs(records)
    pair_rows = [i for i, r in enumerate(records) for _ in r.aspects]
    matrix = sentiment_features(featurizer, settings, [q for q, _ in pairs], embeddings[pair_rows])
    scores = np.array([s for _, s in pairs])
    return [fit_binary(matrix, (scores > k).astype(int), settings.sentiment_c) for k in SENTIMENTS[:-1]]


def fit_linear_model(records: Sequence[ReviewRecord], embeddings: np.ndarray, settings: LinearSettings,
                     embedder: TextEmbedder | None, embedder_path: str | None) -> LinearReviewModel:
    """Fit the vectorizers and every head on `records`."""
    featurizer = fit_featurizer(records, settings)
    return LinearReviewModel(featurizer, fit_aspect_heads(featurizer, records, embeddings, settings),
                             fit_sentiment_heads(featurizer, records, embeddings, settings),
                             settings, embedder, embedder_path)


def out_of_fold_aspects(records: Sequence[ReviewRecord], embeddings: np.ndarray, settings: LinearSettings,
                        folds: int = CV_FOLDS, seed: int = 0) -> np.ndarray:
    """Aspect probabilities of each training review from heads that did not see it."""
    probabilities = np.zeros((len(records), len(ASPECTS)))
    for fit_rows, held_rows in KFold(folds, shuffle=True, random_state=seed).split(records):
        fitted = [records[i] for i in fit_rows]
        featurizer = fit_featurizer(fitted, settings)
        heads = fit_aspect_heads(featurizer, fitted, embeddings[fit_rows], settings)
        matrix = featurizer.aspect_matrix([records[i].text for i in held_rows], embeddings[held_rows],
                                          settings.aspect_embedding_weight)
        probabilities[held_rows] = np.column_stack([h.predict_proba(matrix)[:, -1] for h in heads])
    return probabilities


def train_linear(records: Sequence[ReviewRecord], embedder: TextEmbedder | None, embedder_path: str | None,
                 settings: LinearSettings | None = None, folds: int = CV_FOLDS,
                 log: Log = print) -> tuple[ReviewAnalyzer, dict[str, float]]:
    """The linear analyzer fitted on `records`, and the cross-validated aspect metrics that chose its
    threshold. `embedder_path` is recorded so that loading finds the same frozen encoder."""
    settings = settings or LinearSettings()
    started = time.perf_counter()
    log(f"embedding {len(records)} reviews with {embedder_path or 'no embedder (lexical features only)'} ...")
    embeddings = embed(embedder, [r.text for r in records])
    log(f"cross-validating the aspect heads ({folds} folds) to tune the threshold ...")
    oof = out_of_fold_aspects(records, embeddings, settings, folds)
    decision = tune_decision(aspect_labels(records), oof)
    micro, macro = micro_macro_f1(aspect_labels(records), decide(oof, decision))
    log(f"threshold {decision.thresholds[0]:.3f}: cross-validated aspect micro-F1 {micro:.3f}, macro-F1 {macro:.3f}")
    log("fitting the aspect and sentiment heads on all training reviews ...")
    model = fit_linear_model(records, embeddings, settings, embedder, embedder_path)
    log(f"linear review model fitted in {time.perf_counter() - started:.0f} s")
    return ReviewAnalyzer(model, decision), {"cv_aspect_micro_f1": micro, "cv_aspect_macro_f1": macro,
                                             "threshold": decision.thresholds[0]}


# --- the transformer backend --------------------------------------------------------------------------


@dataclass
class TransformerTaskSettings:
    """Settings of the transformer path recorded in each run's config.json."""

    base_model: str
    aspect_max_length: int = 128
    sentiment_max_length: int = 160
    # e5's 250k-word vocabulary is most of its weights; rare words would drift on 500 reviews.
    freeze_word_embeddings: bool = True
    # Weight each sentiment level by n / (levels * count): the seed's imbalance (few -2 and +2).
    balanced_sentiment_loss: bool = True
    # Weight each aspect's positives by negatives / positives: an aspect is absent from ~90 % of
    # reviews, and unweighted the heads first learn to say "no" to everything.
    balanced_aspect_loss: bool = True


class _ClassifierTask:
    """What both stages share: a tokenizer-backed collate, logits over validation texts, saving."""

    higher_is_better = True

    def __init__(self, model: nn.Module, tokenizer, train_items: list[tuple[str, Any]],
                 val_items: list[tuple[str, Any]], max_length: int):
        self.model = model
        self.tokenizer = tokenizer
        self.train_items = train_items
        self.val_items = val_items
        self.max_length = max_length

    def train_dataset(self) -> list[tuple[str, Any]]:
        return self.train_items

    def collate(self, items: list[tuple[str, Any]]) -> dict[str, torch.Tensor]:
        batch = dict(self.tokenizer([t for t, _ in items], padding=True, truncation=True,
                                    max_length=self.max_length, return_tensors="pt"))
        batch["labels"] = torch.tensor(np.array([label for _, label in items]))
        return batch

    def logits(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def validation_logits(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits, labels) of the validation items, batch by batch on the model's device."""
        device = next(self.model.parameters()).device
        outputs, labels = [], []
        for start in range(0, len(self.val_items), 32):
            batch = self.collate(self.val_items[start:start + 32])
            outputs.append(self.logits(self.model, {k: v.to(device) for k, v in batch.items()}).float().cpu())
            labels.append(batch["labels"])
        return torch.cat(outputs), torch.cat(labels)

    def save(self, path: Path) -> None:
        self.model.save_pretrained(path)
        self.tokenizer.save_pretrained(path)


class AspectTask(_ClassifierTask):
    """Multi-label aspect detection: one sigmoid per aspect, binary cross-entropy (optionally with
    each aspect's positives weighted up to balance its negatives)."""

    selection_metric = "aspect_micro_f1"

    def __init__(self, model, tokenizer, train_records, val_records, max_length: int, balanced: bool):
        super().__init__(model, tokenizer, _aspect_items(train_records), _aspect_items(val_records), max_length)
        positives = aspect_labels(train_records).sum(axis=0)
        weights = (len(train_records) - positives) / np.maximum(positives, 1) if balanced else np.ones(len(ASPECTS))
        self.positive_weights = torch.tensor(weights, dtype=torch.float32)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.logits(model, batch)
        return nn.functional.binary_cross_entropy_with_logits(logits, batch["labels"],
                                                              pos_weight=self.positive_weights.to(logits.device))

    def evaluate(self) -> dict[str, float]:
        logits, labels = self.validation_logits()
        micro, macro = micro_macro_f1(labels.numpy().astype(int), (torch.sigmoid(logits) >= 0.5).int().numpy())
        return {"val_loss": float(nn.functional.binary_cross_entropy_with_logits(logits, labels)),
                "aspect_micro_f1": micro, "aspect_macro_f1": macro}


def _aspect_items(records: Sequence[ReviewRecord]) -> list[tuple[str, Any]]:
    return [(r.text, row.astype(np.float32)) for r, row in zip(records, aspect_labels(records))]


class SentimentTask(_ClassifierTask):
    """Five-way sentiment of one aspect, read as the seed's prompt; optionally class-weighted."""

    selection_metric = "sentiment_macro_f1"

    def __init__(self, model, tokenizer, train_records, val_records, max_length: int, balanced: bool):
        super().__init__(model, tokenizer, _sentiment_items(train_records), _sentiment_items(val_records),
                         max_length)
        counts = np.bincount([label for _, label in self.train_items], minlength=len(SENTIMENTS))
        weights = len(self.train_items) / (len(SENTIMENTS) * np.maximum(counts, 1)) if balanced else np.ones(len(SENTIMENTS))
        self.class_weights = torch.tensor(weights, dtype=torch.float32)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        logits = self.logits(model, batch)
        return nn.functional.cross_entropy(logits, batch["labels"], weight=self.class_weights.to(logits.device))

    def evaluate(self) -> dict[str, float]:
        logits, labels = self.validation_logits()
        predicted = logits.argmax(-1).numpy()
        return {"val_loss": float(nn.functional.cross_entropy(logits, labels)),
                "sentiment_accuracy": float(accuracy_score(labels.numpy(), predicted)),
                "sentiment_macro_f1": float(f1_score(labels.numpy(), predicted, labels=range(len(SENTIMENTS)),
                                                     average="macro", zero_division=0))}


def _sentiment_items(records: Sequence[ReviewRecord]) -> list[tuple[str, Any]]:
    return [(sentiment_prompt(r.text, aspect), SENTIMENTS.index(score))
            for r in records for aspect, score in r.aspects.items()]


def build_small_base(path: Path, texts: Iterable[str], hidden: int = 256, layers: int = 4, heads: int = 4,
                     vocab_size: int = 4000, max_length: int = 160) -> Path:
    """A small RoBERTa (random weights) and a Unigram tokenizer trained on `texts`: the transformer
    path's starting checkpoint when no pretrained one is on disk."""
    from tokenizers import processors
    from transformers import RobertaConfig, RobertaModel

    specials = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
                "mask_token": "<mask>", "cls_token": "<s>", "sep_token": "</s>"}
    tokenizer = train_tokenizer(list(texts), specials, vocab_size=vocab_size)
    # RoBERTa classifies from the first token: wrap every text as `<s> ... </s>`.
    bos, eos = tokenizer.convert_tokens_to_ids(["<s>", "</s>"])
    tokenizer.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    config = RobertaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                           num_attention_heads=heads, intermediate_size=hidden * 4,
                           max_position_embeddings=max_length + 2, pad_token_id=tokenizer.pad_token_id,
                           bos_token_id=bos, eos_token_id=eos)
    path.mkdir(parents=True, exist_ok=True)
    RobertaModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _classifier_from_base(base_model: str, num_labels: int, problem_type: str, freeze_word_embeddings: bool):
    """A sequence classifier (RobertaFor... / BertFor..., by the base's config) with a fresh head."""
    from transformers import AutoModelForSequenceClassification

    from indexer.encoder import load_tokenizer

    model = AutoModelForSequenceClassification.from_pretrained(base_model, num_labels=num_labels,
                                                               problem_type=problem_type)
    if freeze_word_embeddings:
        model.get_input_embeddings().weight.requires_grad_(False)
    return model, load_tokenizer(base_model)


def train_transformer(records: Sequence[ReviewRecord], settings: TransformerTaskSettings,
                      aspect_config: TrainConfig, sentiment_config: TrainConfig,
                      log: Log = print) -> tuple[ReviewAnalyzer, dict[str, float]]:
    """Fine-tune the aspect and the sentiment classifier from `settings.base_model` on the shared loop
    (each stage's run in its config's output_dir), tune the aspect threshold on the validation
    reviews, and return the analyzer built from the best epochs."""
    fit_records, val_records = split_reviews(records, min(VALIDATION_REVIEWS, len(records) // 5), seed=HELDOUT_SEED + 1)
    log(f"transformer path from {settings.base_model}: {len(fit_records)} training / {len(val_records)} validation reviews")
    model, tokenizer = _classifier_from_base(settings.base_model, len(ASPECTS), "multi_label_classification",
                                             settings.freeze_word_embeddings)
    task_config = {"settings": settings.__dict__}
    aspect_config.task, sentiment_config.task = {**task_config, "stage": "aspect"}, {**task_config, "stage": "sentiment"}
    train(AspectTask(model, tokenizer, fit_records, val_records, settings.aspect_max_length,
                     settings.balanced_aspect_loss), aspect_config, log=log)
    model, tokenizer = _classifier_from_base(settings.base_model, len(SENTIMENTS), "single_label_classification",
                                             settings.freeze_word_embeddings)
    train(SentimentTask(model, tokenizer, fit_records, val_records, settings.sentiment_max_length,
                        settings.balanced_sentiment_loss), sentiment_config, log=log)

    aspect_model, aspect_tokenizer = load_classifier(aspect_config.output_dir)
    sentiment_model, sentiment_tokenizer = load_classifier(sentiment_config.output_dir)
    backend = TransformerReviewModel(aspect_model, aspect_tokenizer, sentiment_model, sentiment_tokenizer,
                                     TransformerSettings(settings.aspect_max_length, settings.sentiment_max_length))
    probabilities = backend.aspect_probabilities([r.text for r in val_records])
    decision = tune_decision(aspect_labels(val_records), probabilities)
    micro, macro = micro_macro_f1(aspect_labels(val_records), decide(probabilities, decision))
    log(f"threshold {decision.thresholds[0]:.3f}: validation aspect micro-F1 {micro:.3f}, macro-F1 {macro:.3f}")
    return ReviewAnalyzer(backend, decision), {"val_aspect_micro_f1": micro, "val_aspect_macro_f1": macro,
                                               "threshold": decision.thresholds[0]}


# --- evaluation --------------------------------------------------------------------------------------


def highlight_matches(highlight: str | None, evidence: str) -> bool:
    """The highlighted eojeol counts as right when it is the evidence eojeol, contains it, or is
    contained in it (annotators and models may disagree on a particle or an emoticon)."""
    return highlight is not None and (highlight == evidence or evidence in highlight or highlight in evidence)


def evaluate(analyzer: ReviewAnalyzer, records: Sequence[ReviewRecord], log: Log | None = None) -> dict[str, float]:
    """Aspect detection (micro/macro F1), and on the gold aspects: sentiment accuracy and macro-F1,
    highlight accuracy against the evidence eojeol."""
    gold = aspect_labels(records)
    predicted = np.zeros_like(gold)
    gold_scores, predicted_scores, hits = [], [], []
    started = time.perf_counter()
    for i, record in enumerate(records):
        for result in analyzer.analyze(record.text):
            predicted[i, ASPECTS.index(result.aspect)] = 1
        for result in analyzer.analyze(record.text, aspects=list(record.aspects)):
            gold_scores.append(record.aspects[result.aspect])
            predicted_scores.append(result.sentiment)
            hits.append(highlight_matches(result.highlight, record.evidence.get(result.aspect, "")))
    micro, macro = micro_macro_f1(gold, predicted)
    metrics = {
        "aspect_micro_f1": micro, "aspect_macro_f1": macro,
        "sentiment_accuracy": float(accuracy_score(gold_scores, predicted_scores)) if gold_scores else 0.0,
        "sentiment_macro_f1": float(f1_score(gold_scores, predicted_scores, labels=list(SENTIMENTS),
                                             average="macro", zero_division=0)) if gold_scores else 0.0,
        "highlight_accuracy": float(np.mean(hits)) if hits else 0.0,
        "n": len(records), "n_aspects": len(gold_scores),
    }
    if log:
        log(f"evaluated {len(records)} reviews in {time.perf_counter() - started:.1f} s")
    return metrics


def write_run_summary(path: Path, summary: dict[str, Any]) -> None:
    """The run's settings and measured figures next to the model (`training.json`)."""
    (path / "training.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
