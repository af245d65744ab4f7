"""Review analysis (seed 003): which aspects a product review talks about, how it rates each one
(-2..2), and which word (eojeol) shows it.

Two stages, as in the seed: a multi-label aspect classifier over the 15 aspects of
`data/reviews/GUIDE.md` (sigmoid outputs, thresholds tuned on data the classifier did not train on),
then a sentiment classifier that reads the review together with one aspect. The highlight is the
seed's: mask one eojeol at a time and keep the one whose masking lowers the aspect's probability most;
the masked variants of a review go through the aspect classifier in one batch.

Two interchangeable backends do the classifying (`ReviewAnalyzer` does not care which):
- `linear` (default): logistic-regression heads over frozen multilingual-e5-small embeddings plus
  character n-gram and kiwipiepy morpheme TF-IDF. The sentiment head also reads the aspect (its
  n-grams crossed with the aspect) and the words around the highlight, and is an ordinal model with
  class-balanced weights, because the extreme ratings (-2, +2) are rare. FINDINGS.md measured this
  family at or above the fine-tuned transformer here; the README has the figures.
- `transformer`: `AutoModelForSequenceClassification` (RoBERTa for klue/roberta-base, BERT for the
  imported e5, or a small RoBERTa built from config) for each stage, the sentiment input written in
  the seed's `###입력: ... ###키워드: 배송` format. For deployments with real weights or a GPU.

Saved layout (whatever the trainer wrote is exactly what `from_pretrained` reads):

    <dir>/review.json        architecture, aspects, thresholds, backend settings
    <dir>/linear.joblib      linear: the fitted vectorizers and heads (+ pointer to the e5 directory)
    <dir>/aspect/, sentiment/  transformer: Hugging Face model + tokenizer directories
"""
from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np
from scipy import sparse

from app.services.registry import register_loader

# The 15 aspects, in GUIDE.md's order (the column order of every aspect matrix).
ASPECTS: tuple[str, ...] = ("배송", "가격", "디자인", "색상", "품질", "사이즈", "신축성", "착용감", "소재",
                            "핏", "길이", "마감처리", "두께", "세탁", "만족도")
SENTIMENTS: tuple[int, ...] = (-2, -1, 0, 1, 2)
ARCHITECTURES = ("linear", "transformer")
CONFIG_FILE = "review.json"
LINEAR_FILE = "linear.joblib"
ASPECT_DIR = "aspect"
SENTIMENT_DIR = "sentiment"
# Forward passes are split into chunks of this many texts (a long review has many masked variants).
PREDICT_BATCH_SIZE = 32
# Analysed texts kept in memory: training revisits each review many times (folds, windows).
MORPHEME_CACHE_SIZE = 16384
# Embeddings the linear backend remembers (one review and its masked variants fit many times over).
EMBEDDING_CACHE_SIZE = 256
# Token limit of the frozen e5 embedder (its position table's size).
EMBEDDER_MAX_TOKENS = 512


@dataclass(frozen=True)
class AspectResult:
    """One aspect of a review: its sentiment (-2..2), the aspect's probability, the eojeol that shows it."""

    aspect: str
    sentiment: int
    probability: float
    highlight: str | None


@dataclass(frozen=True)
class SentimentQuery:
    """What the sentiment stage reads: the review, one aspect, and the index of the eojeol that the
    highlight chose for it (the linear backend reads the words around it)."""

    text: str
    aspect: str
    highlight_index: int


# --- text helpers --------------------------------------------------------------------------------


def eojeols(text: str) -> list[str]:
    """The review's space-separated words, the unit of highlights and evidence (`text.split()`)."""
    return text.split()


def masked_variants(words: Sequence[str], mask: str) -> list[str]:
    """One text per word with that word replaced by `mask` (removed when `mask` is empty)."""
    return [" ".join(w for w in (*words[:i], mask, *words[i + 1:]) if w) for i in range(len(words))]


def context_window(words: Sequence[str], center: int, radius: int) -> str:
    """The words within `radius` of `center`: where the judgement on the highlighted aspect is."""
    return " ".join(words[max(0, center - radius):center + radius + 1])


def sentiment_prompt(text: str, aspect: str) -> str:
    """The seed's sentiment input: the review and the aspect it should rate."""
    return f"###입력: {text} ###키워드: {aspect}"


@lru_cache(maxsize=1)
def _kiwi():
    from kiwipiepy import Kiwi

    return Kiwi()


@lru_cache(maxsize=MORPHEME_CACHE_SIZE)
def morpheme_document(text: str) -> str:
    """The review as kiwipiepy morphemes `form/TAG` (tag family only: NN, VV, VA, EF, MA, ...).

    Morphemes separate the stem from its endings, so negation (`안`/`못`), intensifiers (`너무`,
    `완전`) and connective endings (`-지만`, contrast) become features of their own."""
    return " ".join(f"{t.form}/{t.tag[:2]}" for t in _kiwi().tokenize(text)) if text.strip() else ""


# --- embedders ------------------------------------------------------------------------------------


class TextEmbedder(Protocol):
    """A sentence embedder: the e5 encoder (`indexer.encoder.TextClip`) or, in tests, a tiny one."""

    def encode_queries(self, texts: list[str]) -> Any:
        """One embedding row per text."""


def load_embedder(path: str | Path) -> TextEmbedder:
    """The frozen e5 encoder in `path` (a Hugging Face directory); only its query tower is needed.
    Whole reviews are embedded (retrieval queries are cut at 64 tokens; a review may run longer)."""
    from indexer.encoder import TextClip

    return TextClip.from_pretrained(path, query_only=True, query_max_length=EMBEDDER_MAX_TOKENS)


def embed(embedder: TextEmbedder | None, texts: Sequence[str]) -> np.ndarray:
    """(n, dim) float32 embeddings, or (n, 0) when there is no embedder (lexical features only)."""
    if embedder is None:
        return np.zeros((len(texts), 0), dtype=np.float32)
    rows = embedder.encode_queries(list(texts))
    return np.asarray(rows.detach().cpu() if hasattr(rows, "detach") else rows, dtype=np.float32)


# --- the linear backend ---------------------------------------------------------------------------


@dataclass
class LinearSettings:
    """Hyper-parameters of the linear backend (chosen by cross-validation on the training split)."""

    char_ngram_max: int = 3
    morph_ngram_max: int = 2
    # Scale of the e5 block next to the TF-IDF blocks (each TF-IDF row has unit norm too).
    aspect_embedding_weight: float = 2.0
    sentiment_embedding_weight: float = 2.0
    aspect_c: float = 10.0
    sentiment_c: float = 10.0
    # Words on each side of the highlight that the sentiment head reads as the aspect's context.
    window_radius: int = 1


@dataclass
class LinearFeaturizer:
    """Fitted vectorizers: character n-grams (robust to spacing and typos) and kiwipiepy morphemes."""

    chars: Any
    morphemes: Any
    window_chars: Any
    window_morphemes: Any

    def lexical(self, texts: Sequence[str], morphs: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([self.chars.transform(texts), self.morphemes.transform(morphs)]).tocsr()

    def aspect_matrix(self, texts: Sequence[str], embeddings: np.ndarray, weight: float) -> sparse.csr_matrix:
        morphs = [morpheme_document(t) for t in texts]
        return sparse.hstack([self.lexical(texts, morphs), sparse.csr_matrix(embeddings * weight)]).tocsr()

    def sentiment_matrix(self, texts: Sequence[str], aspect_ids: np.ndarray, windows: Sequence[str],
                         embeddings: np.ndarray, weight: float) -> sparse.csr_matrix:
        """Review n-grams, the same n-grams in the aspect's own block (what `늦어요` means depends on
        the aspect), the words around the highlight, the review embedding and the aspect itself."""
        chars = self.chars.transform(texts)
        window = sparse.hstack([self.window_chars.transform(windows),
                                self.window_morphemes.transform([morpheme_document(w) for w in windows])])
        return sparse.hstack([
            chars, crossed(chars, aspect_ids, len(ASPECTS)),
            self.morphemes.transform([morpheme_document(t) for t in texts]), window,
            sparse.csr_matrix(embeddings * weight), sparse.csr_matrix(np.eye(len(ASPECTS))[aspect_ids]),
        ]).tocsr()


def sentiment_features(featurizer: LinearFeaturizer, settings: LinearSettings, queries: Sequence[SentimentQuery],
                       embeddings: np.ndarray) -> sparse.csr_matrix:
    """The sentiment head's input for each query (`embeddings`: e5 rows of the queries' reviews)."""
    windows = [context_window(eojeols(q.text), q.highlight_index, settings.window_radius) for q in queries]
    aspect_ids = np.array([ASPECTS.index(q.aspect) for q in queries], dtype=int)
    return featurizer.sentiment_matrix([q.text for q in queries], aspect_ids, windows, embeddings,
                                       settings.sentiment_embedding_weight)


def crossed(features: sparse.spmatrix, groups: np.ndarray, n_groups: int) -> sparse.csr_matrix:
    """Each row's features moved into its group's own block: a (rows, features * n_groups) matrix."""
    coo = features.tocoo()
    width = features.shape[1]
    return sparse.csr_matrix((coo.data, (coo.row, coo.col + groups[coo.row] * width)),
                             shape=(features.shape[0], width * n_groups))


def ordinal_probabilities(exceedance: np.ndarray) -> np.ndarray:
    """Class probabilities from P(y > k) for the k between consecutive ordered classes (Frank & Hall).

    Each binary model sees every example, so the rare ends (-2, +2) borrow strength from their
    neighbours; differences that come out negative (the models are fitted apart) are clipped."""
    n = exceedance.shape[0]
    bounds = np.hstack([np.ones((n, 1)), exceedance, np.zeros((n, 1))])
    probs = np.clip(bounds[:, :-1] - bounds[:, 1:], 0.0, None)
    return probs / np.maximum(probs.sum(axis=1, keepdims=True), 1e-12)


class LinearReviewModel:
    """Both stages as logistic-regression heads (see the module docstring)."""

    architecture = "linear"
    # Masking removes the word: TF-IDF and the embedding then see the review without it.
    mask_token = ""

    def __init__(self, featurizer: LinearFeaturizer, aspect_heads: Sequence[Any],
                 sentiment_heads: Sequence[Any], settings: LinearSettings, embedder: TextEmbedder | None,
                 embedder_path: str | None):
        self.featurizer = featurizer
        self.aspect_heads = list(aspect_heads)
        # One binary head per boundary: P(sentiment > -2), P(> -1), P(> 0), P(> 1).
        self.sentiment_heads = list(sentiment_heads)
        self.settings = settings
        self.embedder = embedder
        self.embedder_path = embedder_path
        self._recent: dict[str, np.ndarray] = {}
        self._recent_lock = threading.Lock()

    def aspect_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 15) probability of each aspect; all texts in one feature computation."""
        matrix = self.featurizer.aspect_matrix(texts, self._embed(texts), self.settings.aspect_embedding_weight)
        return np.column_stack([head.predict_proba(matrix)[:, -1] for head in self.aspect_heads])

    def sentiment_probabilities(self, queries: Sequence[SentimentQuery]) -> np.ndarray:
        """(n, 5) probability of each sentiment -2..2."""
        matrix = sentiment_features(self.featurizer, self.settings, queries, self._embed([q.text for q in queries]))
        return ordinal_probabilities(np.column_stack([h.predict_proba(matrix)[:, -1] for h in self.sentiment_heads]))

    def _embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings of `texts`, each distinct text encoded once. The sentiment stage reads the
        review the aspect stage has just embedded, so the last few texts are remembered."""
        with self._recent_lock:
            rows = {t: self._recent[t] for t in texts if t in self._recent}
            missing = [t for t in dict.fromkeys(texts) if t not in rows]
            rows.update(zip(missing, embed(self.embedder, missing)))
            self._recent.update(rows)
            while len(self._recent) > EMBEDDING_CACHE_SIZE:
                self._recent.pop(next(iter(self._recent)))
        if not texts:
            return embed(self.embedder, [])
        return np.stack([rows[t] for t in texts])

    def save_pretrained(self, path: Path) -> dict[str, Any]:
        import joblib

        joblib.dump({"featurizer": self.featurizer, "aspect_heads": self.aspect_heads,
                     "sentiment_heads": self.sentiment_heads}, path / LINEAR_FILE)
        return {"linear": asdict(self.settings), "uses_embedder": self.embedder is not None,
                "embedder_path": _portable_path(self.embedder_path, path)}

    @classmethod
    def from_pretrained(cls, path: Path, saved: Mapping[str, Any], embedder: TextEmbedder | None = None,
                        embedder_path: str | None = None) -> "LinearReviewModel":
        """The heads were fitted with an embedder's features: that embedder is `embedder` (tests),
        else the one at `embedder_path`, else the e5 directory recorded at training."""
        import joblib

        state = joblib.load(path / LINEAR_FILE)
        recorded = _resolve_path(saved.get("embedder_path"), path)
        if not saved["uses_embedder"]:
            embedder = None
        elif embedder is None:
            if not (embedder_path or recorded):
                raise ValueError(f"{path} was trained with an embedder whose path was not recorded; pass one")
            embedder = load_embedder(embedder_path or recorded)
        return cls(state["featurizer"], state["aspect_heads"], state["sentiment_heads"],
                   LinearSettings(**saved["linear"]), embedder, recorded)


def _portable_path(target: str | None, model_dir: Path) -> str | None:
    """`target` relative to the model directory when both sit on one tree (artifacts move together)."""
    if target is None:
        return None
    try:
        return os.path.relpath(Path(target).resolve(), model_dir.resolve())
    except ValueError:  # another drive (Windows)
        return str(Path(target).resolve())


def _resolve_path(recorded: str | None, model_dir: Path) -> str | None:
    return None if recorded is None else str((model_dir / recorded).resolve())


# --- the transformer backend ----------------------------------------------------------------------


@dataclass
class TransformerSettings:
    aspect_max_length: int = 128
    sentiment_max_length: int = 160


class TransformerReviewModel:
    """Both stages as fine-tuned sequence classifiers (`AutoModelForSequenceClassification`)."""

    architecture = "transformer"

    def __init__(self, aspect_model, aspect_tokenizer, sentiment_model, sentiment_tokenizer,
                 settings: TransformerSettings | None = None):
        self.aspect_model = aspect_model.eval()
        self.aspect_tokenizer = aspect_tokenizer
        self.sentiment_model = sentiment_model.eval()
        self.sentiment_tokenizer = sentiment_tokenizer
        self.settings = settings or TransformerSettings()

    @property
    def mask_token(self) -> str:
        """The seed masks a word with the tokenizer's own mask token."""
        return self.aspect_tokenizer.mask_token or self.aspect_tokenizer.unk_token

    def aspect_probabilities(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        logits = _logits(self.aspect_model, self.aspect_tokenizer, texts, self.settings.aspect_max_length)
        return torch.sigmoid(logits).numpy()

    def sentiment_probabilities(self, queries: Sequence[SentimentQuery]) -> np.ndarray:
        import torch

        prompts = [sentiment_prompt(q.text, q.aspect) for q in queries]
        logits = _logits(self.sentiment_model, self.sentiment_tokenizer, prompts, self.settings.sentiment_max_length)
        return torch.softmax(logits, dim=-1).numpy()

    def save_pretrained(self, path: Path) -> dict[str, Any]:
        for name, model, tokenizer in ((ASPECT_DIR, self.aspect_model, self.aspect_tokenizer),
                                       (SENTIMENT_DIR, self.sentiment_model, self.sentiment_tokenizer)):
            model.save_pretrained(path / name)
            tokenizer.save_pretrained(path / name)
        return {"transformer": asdict(self.settings)}

    @classmethod
    def from_pretrained(cls, path: Path, saved: Mapping[str, Any]) -> "TransformerReviewModel":
        aspect_model, aspect_tokenizer = load_classifier(path / ASPECT_DIR)
        sentiment_model, sentiment_tokenizer = load_classifier(path / SENTIMENT_DIR)
        return cls(aspect_model, aspect_tokenizer, sentiment_model, sentiment_tokenizer,
                   TransformerSettings(**saved.get("transformer", {})))


def load_classifier(path: str | Path):
    """(model, tokenizer) of a sequence classifier saved with save_pretrained."""
    from transformers import AutoModelForSequenceClassification

    from indexer.encoder import load_tokenizer

    return AutoModelForSequenceClassification.from_pretrained(str(path)), load_tokenizer(path)


def _logits(model, tokenizer, texts: Sequence[str], max_length: int):
    """Logits for `texts`, in chunks, on the model's device; returned on the CPU."""
    import torch

    device = next(model.parameters()).device
    chunks = []
    with torch.no_grad():
        for start in range(0, len(texts), PREDICT_BATCH_SIZE):
            batch = tokenizer(list(texts[start:start + PREDICT_BATCH_SIZE]), padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            chunks.append(model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu())
    return torch.cat(chunks)


# --- the analyzer ---------------------------------------------------------------------------------


class ReviewBackend(Protocol):
    architecture: str
    mask_token: str

    def aspect_probabilities(self, texts: Sequence[str]) -> np.ndarray: ...

    def sentiment_probabilities(self, queries: Sequence[SentimentQuery]) -> np.ndarray: ...

    def save_pretrained(self, path: Path) -> dict[str, Any]: ...


@dataclass
class AspectDecision:
    """How aspect probabilities become aspects: per-aspect thresholds, and at least `min_aspects`
    (every review rates something, so the most likely aspect is kept even below its threshold)."""

    thresholds: list[float] = field(default_factory=lambda: [0.5] * len(ASPECTS))
    min_aspects: int = 1

    def select(self, probabilities: np.ndarray) -> list[int]:
        chosen = [j for j in np.argsort(-probabilities) if probabilities[j] >= self.thresholds[j]]
        for j in np.argsort(-probabilities)[:self.min_aspects]:
            if j not in chosen:
                chosen.append(j)
        return [int(j) for j in chosen]


class ReviewAnalyzer:
    """Aspects, their sentiments and highlights for a review (`analyze`), over either backend."""

    def __init__(self, backend: ReviewBackend, decision: AspectDecision | None = None):
        self.backend = backend
        self.decision = decision or AspectDecision()

    @property
    def architecture(self) -> str:
        return self.backend.architecture

    def analyze(self, text: str, aspects: Sequence[str] | None = None) -> list[AspectResult]:
        """The review's aspects, most probable first. With `aspects` given (evaluation on gold
        labels), those aspects are rated and highlighted instead of the detected ones."""
        words = eojeols(text)
        if not words:
            return []
        # Row 0: the review; row 1 + i: the review with word i masked. One batched pass for all.
        probabilities = self.backend.aspect_probabilities([text, *masked_variants(words, self.backend.mask_token)])
        chosen = self.decision.select(probabilities[0]) if aspects is None else [ASPECTS.index(a) for a in aspects]
        drops = probabilities[0] - probabilities[1:]
        highlights = [int(np.argmax(drops[:, j])) for j in chosen]
        queries = [SentimentQuery(text, ASPECTS[j], h) for j, h in zip(chosen, highlights)]
        sentiments = self.backend.sentiment_probabilities(queries) if queries else np.zeros((0, len(SENTIMENTS)))
        return [AspectResult(ASPECTS[j], SENTIMENTS[int(np.argmax(s))], float(probabilities[0, j]), words[h])
                for j, h, s in zip(chosen, highlights, sentiments)]

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        saved = {"architecture": self.backend.architecture, "aspects": list(ASPECTS),
                 "sentiments": list(SENTIMENTS), "decision": asdict(self.decision),
                 **self.backend.save_pretrained(path)}
        (path / CONFIG_FILE).write_text(json.dumps(saved, ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def from_pretrained(cls, path: str | Path, embedder: TextEmbedder | None = None,
                        embedder_path: str | None = None) -> "ReviewAnalyzer":
        """Load what `save_pretrained` wrote. The linear backend's embedder is `embedder`, else the one
        at `embedder_path`, else the e5 directory recorded at training."""
        path = Path(path)
        config_file = path / CONFIG_FILE
        if not config_file.exists():
            raise FileNotFoundError(f"no review model in {path} (missing {CONFIG_FILE}); run `flask train review`")
        saved = json.loads(config_file.read_text(encoding="utf-8"))
        if tuple(saved["aspects"]) != ASPECTS or tuple(saved["sentiments"]) != SENTIMENTS:
            raise ValueError(f"{path} was trained for other aspects or sentiment levels")
        if saved["architecture"] == "linear":
            backend: ReviewBackend = LinearReviewModel.from_pretrained(path, saved, embedder, embedder_path)
        elif saved["architecture"] == "transformer":
            backend = TransformerReviewModel.from_pretrained(path, saved)
        else:
            raise ValueError(f"unknown review architecture {saved['architecture']!r}")
        return cls(backend, AspectDecision(**saved["decision"]))


@register_loader("review")
def load_review_analyzer(config: Mapping[str, Any]) -> ReviewAnalyzer:
    return ReviewAnalyzer.from_pretrained(config["REVIEW_MODEL"])
