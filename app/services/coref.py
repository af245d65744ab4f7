"""Dialogue coreference (seed 001): which photographed object does the final 이거/저거/그거 point to?

A dialogue between two people who each post a photo (given as a caption) ends with an utterance that
refers to one object with a demonstrative; four options name candidate objects ("B가 올린 사진 속
커피잔"). Two scorers answer it, both by scoring every option and taking a softmax over the four,
never by free generation (the seed's defect: repeated or long answers), so exact match is accuracy:

- `FeatureScorer` (the default): a linear model over linguistic features of each option (which
  demonstrative series the final utterance uses crossed with whether the option's photo is the final
  speaker's own, how recently and by whom its object was mentioned, found by kiwipiepy morphemes),
  optionally plus cosines from a sentence embedder (multilingual-e5-small; measured no gain here, so
  off by default). FINDINGS.md measured this family well above fine-tuned transformers at the size
  that trains here: the data's strongest regularity is deictic (이거 -> own photo, 저거 -> the
  partner's), which a linear model picks up from 200 items.
- `CausalLMScorer`: any `AutoModelForCausalLM` fine-tuned on the seed's prompt format; each option's
  continuation is scored by its log-likelihood given the prompt. For deployments with real weights.

`CorefResolver` wraps either one and saves/loads exactly what `trainers/coref.py` writes. No Flask
here except the registry decorator at the bottom.
"""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

import numpy as np

from app.services.registry import register_loader

OPTION_KEYS = ("A", "B", "C", "D")
CONFIG_FILE = "coref.json"
FEATURES_FILE = "features.json"
LM_DIR = "lm"

# --- dialogues ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One dialogue turn: an utterance (`text`) or a posted photo (`photo` id and its `caption`)."""

    speaker: str
    text: str | None = None
    photo: str | None = None
    caption: str | None = None

    @property
    def is_photo(self) -> bool:
        return self.caption is not None

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "Turn":
        if "caption" in obj:
            return cls(str(obj["speaker"]), photo=str(obj.get("photo", "")), caption=str(obj["caption"]))
        return cls(str(obj["speaker"]), text=str(obj["text"]))

    def to_json(self) -> dict[str, Any]:
        if self.is_photo:
            return {"speaker": self.speaker, "photo": self.photo, "caption": self.caption}
        return {"speaker": self.speaker, "text": self.text}


@dataclass(frozen=True)
class CorefItem:
    """A dialogue, its four options, and (for training/evaluation data) the right option's key."""

    turns: tuple[Turn, ...]
    options: dict[str, str]
    answer: str | None = None
    item_id: str = ""

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> "CorefItem":
        """One `coref.jsonl` object (or an API request body: no answer, no id)."""
        turns = tuple(Turn.from_json(t) for t in obj["turns"])
        options = {key: str(obj["options"][key]) for key in OPTION_KEYS}
        return cls(turns, options, obj.get("answer"), str(obj.get("id", "")))

    @property
    def final_turn(self) -> Turn:
        """The last utterance: the one whose demonstrative is to be resolved."""
        return next(t for t in reversed(self.turns) if not t.is_photo)


def read_items(path: Path) -> list[CorefItem]:
    """A JSON Lines file in the `coref.jsonl` format."""
    with open(path, encoding="utf-8") as fh:
        return [CorefItem.from_json(json.loads(line)) for line in fh if line.strip()]


# "B가 올린 사진 속 커피잔" -> owner B, object 커피잔 (also "B의 사진 속 ...", "B 사진 속 ...").
OPTION_PATTERN = re.compile(r"^\s*(?P<owner>\S+?)(?:가|이|의)?\s*(?:올린\s*)?사진\s*(?:속|에 있는|의)\s*(?P<object>.+?)\s*$")


@dataclass(frozen=True)
class ParsedOption:
    """An option split into whose photo it is from (None: not stated) and the object it names."""

    owner: str | None
    object: str


def parse_option(text: str) -> ParsedOption:
    match = OPTION_PATTERN.match(text)
    if match is None:
        return ParsedOption(None, text.strip())
    return ParsedOption(match["owner"], match["object"])


def option_owner(item: CorefItem, key: str) -> str | None:
    """Whose photo option `key` is from: stated in the option, else the photo whose caption names it."""
    parsed = parse_option(item.options[key])
    speakers = {t.speaker for t in item.turns}
    if parsed.owner in speakers:
        return parsed.owner
    object_morphs = content_morphemes(parsed.object)
    best, best_overlap = None, 0
    for turn in item.turns:
        if turn.is_photo:
            overlap = len(object_morphs & content_morphemes(turn.caption or ""))
            if overlap > best_overlap:
                best, best_overlap = turn.speaker, overlap
    return best


# --- Korean morphology (kiwipiepy) -------------------------------------------------------------

# Tags of morphemes that carry content (nouns, roots, foreign words, numbers) for mention matching.
CONTENT_TAG_PREFIXES = ("NNG", "NNP", "XR", "SL", "SH", "SN")
# Korean demonstratives come in three series by distance: 이 (near the speaker), 그 (near the listener
# or already mentioned), 저 (away from both). The series is the pronoun's or determiner's first syllable.
DEMONSTRATIVE_SERIES = {"이": "proximal", "여": "proximal", "얘": "proximal",
                        "그": "medial", "거": "medial", "걔": "medial",
                        "저": "distal", "쟤": "distal"}
SERIES = ("proximal", "medial", "distal")
# Pronouns that look like demonstratives but are not: humble 저 (I), 그 (he) stand alone as NP.
NON_DEMONSTRATIVE_PRONOUNS = {"저", "그", "저희", "그녀"}
# At the start of a sentence Kiwi sometimes reads a demonstrative as an interjection (IC): accept the
# bare determiners and animate pronouns there (but not 저기 "excuse me" or other interjections).
INTERJECTION_DETERMINERS = {"이", "그", "저"}
INTERJECTION_PRONOUNS = {"얘", "걔", "쟤"}


@lru_cache(maxsize=1)
def kiwi():
    """The process-wide kiwipiepy analyser (loading it takes seconds, so it is loaded once)."""
    from kiwipiepy import Kiwi

    return Kiwi()


@lru_cache(maxsize=65536)
def _tokens(text: str) -> tuple[tuple[str, str], ...]:
    return tuple((t.form, t.tag) for t in kiwi().tokenize(text))


def content_morphemes(text: str) -> frozenset[str]:
    """The content morphemes of `text` (nouns, roots, foreign words): what mention matching compares."""
    return frozenset(form for form, tag in _tokens(text) if tag.startswith(CONTENT_TAG_PREFIXES))


@dataclass(frozen=True)
class Demonstratives:
    """The demonstratives of an utterance: which series, and whether one is a determiner.

    A determiner phrase (`그 빨간 거`, `저 친구`) describes its referent, which speakers do when they
    have not named it yet; a bare pronoun (`이거`, `걔`) usually points at what was just talked about.
    """

    series: frozenset[str]
    determiner: bool


def demonstratives(text: str) -> Demonstratives:
    """The demonstratives of `text`, found by kiwipiepy's part-of-speech analysis."""
    series, determiner = set(), False
    for form, tag in _tokens(text):
        is_determiner = tag == "MM" or (tag == "IC" and form in INTERJECTION_DETERMINERS)
        is_pronoun = (tag == "NP" and form not in NON_DEMONSTRATIVE_PRONOUNS) or (
            tag == "IC" and form in INTERJECTION_PRONOUNS)
        found = DEMONSTRATIVE_SERIES.get(form[0]) if is_determiner or is_pronoun else None
        if found is not None:
            series.add(found)
            determiner = determiner or is_determiner
    return Demonstratives(frozenset(series), determiner)


# --- the feature scorer ------------------------------------------------------------------------


class TextEmbedder(Protocol):
    """A sentence embedder: the e5 encoder (`indexer.encoder.TextClip`) or, in tests, a tiny one."""

    def encode_queries(self, texts: list[str]) -> Any:
        """One embedding row per text."""


def _normalised(rows: Any) -> np.ndarray:
    matrix = np.asarray(rows.detach().cpu() if hasattr(rows, "detach") else rows, dtype=np.float32)
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def _mention_strength(object_morphs: frozenset[str], object_text: str, text: str) -> float:
    """How fully `text` names the object: 1 for the whole name, else the share of its morphemes."""
    if not object_morphs:
        return 0.0
    if object_text.replace(" ", "") in text.replace(" ", ""):
        return 1.0
    return len(object_morphs & content_morphemes(text)) / len(object_morphs)


def _distinctive_morphemes(objects: Sequence[str]) -> list[frozenset[str]]:
    """Each object's morphemes minus those other options share (파크골프채 vs 파크골프공 -> 채, 공)."""
    morphs = [content_morphemes(o) for o in objects]
    result = []
    for i, own in enumerate(morphs):
        others = frozenset().union(*(m for j, m in enumerate(morphs) if j != i))
        result.append(own - others or own)
    return result


@dataclass
class MentionHistory:
    """Where an object was mentioned in the utterances before the final one."""

    turns_since: int | None  # 1 = in the utterance right before the final one; None = never
    count: float
    by_final_speaker: bool  # the most recent mention was the final speaker's own


def _mention_history(item: CorefItem, morphs: frozenset[str], object_text: str) -> MentionHistory:
    utterances = [t for t in item.turns if not t.is_photo][:-1]
    final_speaker = item.final_turn.speaker
    strengths = [_mention_strength(morphs, object_text, t.text or "") for t in utterances]
    mentioned = [i for i, s in enumerate(strengths) if s > 0]
    if not mentioned:
        return MentionHistory(None, 0.0, False)
    last = mentioned[-1]
    return MentionHistory(len(utterances) - last, float(sum(strengths)), utterances[last].speaker == final_speaker)


def option_features(item: CorefItem) -> list[dict[str, float]]:
    """The linguistic features of each option (A..D), without embeddings.

    What they encode, and why: the demonstrative series crossed with own/partner photo (이거 -> own,
    저거 -> partner's in 85-95 % of the authored data); mention recency and who mentioned it last (그거
    points back to what was just talked about); whether the final utterance names the object itself.
    """
    final = item.final_turn
    found = demonstratives(final.text or "")
    parsed = [parse_option(item.options[k]) for k in OPTION_KEYS]
    morphs = _distinctive_morphemes([p.object for p in parsed])
    histories = [_mention_history(item, m, p.object) for m, p in zip(morphs, parsed)]
    most_recent = min((h.turns_since for h in histories if h.turns_since is not None), default=None)
    rows = []
    for key, p, m, history in zip(OPTION_KEYS, parsed, morphs, histories):
        own = float(option_owner(item, key) == final.speaker)
        row = {"own_photo": own}
        for name in (*SERIES, "none"):
            present = float(name in found.series) if name != "none" else float(not found.series)
            row[f"{name}_x_own"] = present * own
            row[f"{name}_x_partner"] = present * (1.0 - own)
        never = float(history.turns_since is None)
        recency = 0.0 if history.turns_since is None else 1.0 / history.turns_since
        row["recency"] = recency
        row["recency_x_medial"] = recency * float("medial" in found.series)
        row["never_mentioned"] = never
        row["never_mentioned_x_determiner"] = never * float(found.determiner)
        row["mention_count"] = math.log1p(history.count)
        row["last_mentioned_by_final_speaker"] = float(history.by_final_speaker)
        row["most_recently_mentioned"] = float(history.turns_since is not None and history.turns_since == most_recent)
        row["named_in_final"] = _mention_strength(m, p.object, final.text or "")
        rows.append(row)
    return rows


def _centred(values: np.ndarray) -> np.ndarray:
    return values - values.mean()


def embedding_features(items: Sequence[CorefItem], embedder: TextEmbedder) -> list[list[dict[str, float]]]:
    """Cosines between the end of the dialogue and each option, relative to the other options.

    They carry what the deictic features cannot: descriptions (`그 날개 넷 달린 거` -> 드론) and the
    topic of the last exchange. Centred over the four options because only differences between
    options decide a softmax over them. All texts go to the embedder in one batch.
    """
    texts: list[str] = []
    for item in items:
        utterances = [t.text or "" for t in item.turns if not t.is_photo]
        parsed = [parse_option(item.options[k]) for k in OPTION_KEYS]
        texts += [utterances[-1], " ".join(utterances[-2:]), *(p.object for p in parsed)]
    vectors = _normalised(embedder.encode_queries(texts))
    per_item = len(OPTION_KEYS) + 2
    result = []
    for i in range(len(items)):
        block = vectors[i * per_item:(i + 1) * per_item]
        final, last_two, objects = block[0], block[1], block[2:]
        cos_final, cos_last_two = _centred(objects @ final), _centred(objects @ last_two)
        result.append([{"cos_final": float(a), "cos_last_two": float(b),
                        "cos_final_is_max": float(a == cos_final.max())}
                       for a, b in zip(cos_final, cos_last_two)])
    return result


def feature_rows(items: Sequence[CorefItem], embedder: TextEmbedder | None) -> list[list[dict[str, float]]]:
    """Per item, per option (A..D): the named features the linear model scores."""
    rows = [option_features(item) for item in items]
    if embedder is not None:
        for item_rows, extra in zip(rows, embedding_features(items, embedder)):
            for row, more in zip(item_rows, extra):
                row.update(more)
    return rows


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = np.exp(scores - scores.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


@dataclass
class FeatureScorer:
    """A linear score per option over standardised named features; softmax over the four options.

    The weights are those of a logistic regression fitted on (option, is-the-answer) rows by
    `trainers/coref.py`; stored as plain JSON, so loading needs neither pickle nor scikit-learn.
    """

    feature_names: list[str]
    mean: list[float]
    scale: list[float]
    weights: list[float]
    embedder: TextEmbedder | None = field(default=None, repr=False)
    # Where the embedder the weights were fitted with was loaded from (None: no embedding features).
    embedder_path: str | None = None

    def matrix(self, rows: list[dict[str, float]]) -> np.ndarray:
        raw = np.array([[row.get(name, 0.0) for name in self.feature_names] for row in rows], dtype=np.float64)
        return (raw - np.array(self.mean)) / np.array(self.scale)

    def probabilities_batch(self, items: Sequence[CorefItem]) -> np.ndarray:
        """(len(items), 4) option probabilities."""
        all_rows = feature_rows(items, self.embedder)
        scores = np.stack([self.matrix(rows) @ np.array(self.weights) for rows in all_rows])
        return softmax(scores)

    def save_pretrained(self, path: Path) -> None:
        state = {"feature_names": self.feature_names, "mean": self.mean, "scale": self.scale,
                 "weights": self.weights, "embedder_path": self.embedder_path}
        (path / FEATURES_FILE).write_text(json.dumps(state, ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def from_pretrained(cls, path: Path, embedder: TextEmbedder | None = None,
                        embedder_path: str | None = None) -> "FeatureScorer":
        """Load the weights; the embedder is the one given, else loaded from `embedder_path` (or the
        path recorded at training) when the weights use embedding features."""
        state = json.loads((path / FEATURES_FILE).read_text(encoding="utf-8"))
        recorded = state.pop("embedder_path")
        if recorded is not None and embedder is None:
            embedder = load_embedder(embedder_path or recorded)
        return cls(**state, embedder=embedder if recorded is not None else None, embedder_path=recorded)


def load_embedder(path: str) -> TextEmbedder:
    """The e5 encoder saved at `path` (a Hugging Face directory), behind `TextEmbedder`."""
    from indexer.encoder import TextClip

    return TextClip.from_pretrained(path)


# --- the causal-LM scorer ----------------------------------------------------------------------

ANSWER_PROMPT = "정답:"


def format_prompt(item: CorefItem) -> str:
    """The seed's prompt: the dialogue (photos as captions), the four options, then `정답:`."""
    lines = []
    for turn in item.turns:
        if turn.is_photo:
            lines.append(f"{turn.speaker}: (사진 {turn.photo}: {turn.caption})")
        else:
            lines.append(f'{turn.speaker}: "{turn.text}"')
    lines += ["", "선택지:", *(f"{k}) {item.options[k]}" for k in OPTION_KEYS), "", ANSWER_PROMPT]
    return "\n".join(lines)


def format_answer(item: CorefItem, key: str) -> str:
    """The continuation scored for option `key` (and trained on for the right one): `D) B가 올린 ...`."""
    return f" {key}) {item.options[key]}"


@dataclass
class EncodedChoice:
    """Token ids of prompt + continuation, and where the continuation starts."""

    input_ids: list[int]
    continuation_start: int


def encode_choice(tokenizer, prompt: str, continuation: str, max_length: int) -> EncodedChoice:
    """BOS + prompt + continuation + EOS, the prompt cut from the left when too long.

    Prompt and continuation are tokenised separately, so the boundary is exact and identical in
    training and scoring; the prompt's start (old turns) is what gets dropped, never the options.
    """
    prefix = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None else []
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    room = max(1, max_length - len(prefix) - len(answer_ids))
    prompt_ids = prefix + prompt_ids[-room:]
    return EncodedChoice(prompt_ids + answer_ids, len(prompt_ids))


def pad_batch(sequences: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """Right-padded ids and attention mask as tensors."""
    import torch

    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for i, seq in enumerate(sequences):
        ids[i, :len(seq)] = torch.tensor(seq)
        mask[i, :len(seq)] = 1
    return ids, mask


def continuation_log_likelihoods(model, ids, mask, starts: list[int]):
    """Sum of log p(token | everything before it) over each row's continuation (from `starts[i]`)."""
    import torch

    logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
    targets = ids[:, 1:]
    token_logp = torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    positions = torch.arange(targets.shape[1], device=ids.device).unsqueeze(0)
    in_continuation = (positions >= (torch.tensor(starts, device=ids.device).unsqueeze(1) - 1)) & (mask[:, 1:] == 1)
    return (token_logp * in_continuation).sum(dim=1)


class CausalLMScorer:
    """Scores each option's continuation by its log-likelihood under a causal LM; softmax over four."""

    def __init__(self, model, tokenizer, max_length: int):
        self.model = model
        self.tokenizer = tokenizer
        self.max_length = max_length

    def option_log_likelihoods(self, item: CorefItem):
        """(4,) tensor: log p(continuation of option k | prompt) for k in A..D."""
        import torch

        prompt = format_prompt(item)
        choices = [encode_choice(self.tokenizer, prompt, format_answer(item, k), self.max_length) for k in OPTION_KEYS]
        device = next(self.model.parameters()).device
        ids, mask = pad_batch([c.input_ids for c in choices], self.tokenizer.pad_token_id)
        with torch.no_grad():
            return continuation_log_likelihoods(self.model, ids.to(device), mask.to(device),
                                                [c.continuation_start for c in choices])

    def probabilities_batch(self, items: Sequence[CorefItem]) -> np.ndarray:
        self.model.eval()
        return np.stack([softmax(self.option_log_likelihoods(item).cpu().numpy().astype(np.float64))
                         for item in items])

    def save_pretrained(self, path: Path) -> None:
        self.model.save_pretrained(path / LM_DIR)
        self.tokenizer.save_pretrained(path / LM_DIR)

    @classmethod
    def from_pretrained(cls, path: Path, max_length: int) -> "CausalLMScorer":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(path / LM_DIR)
        return cls(model.eval(), AutoTokenizer.from_pretrained(path / LM_DIR), max_length)


# --- the resolver --------------------------------------------------------------------------------


class OptionScorer(Protocol):
    def probabilities_batch(self, items: Sequence[CorefItem]) -> np.ndarray: ...

    def save_pretrained(self, path: Path) -> None: ...


@dataclass(frozen=True)
class CorefResult:
    answer: str
    option: str
    probabilities: dict[str, float]


ARCHITECTURES = ("features", "causal_lm")


class CorefResolver:
    """Answers the four-way question with whichever scorer `trainers/coref.py` trained."""

    def __init__(self, scorer: OptionScorer, architecture: str, settings: dict[str, Any] | None = None):
        if architecture not in ARCHITECTURES:
            raise ValueError(f"unknown coreference architecture {architecture!r}; expected one of {ARCHITECTURES}")
        self.scorer = scorer
        self.architecture = architecture
        self.settings = settings or {}

    def resolve_items(self, items: Sequence[CorefItem]) -> list[CorefResult]:
        probabilities = self.scorer.probabilities_batch(items)
        results = []
        for item, probs in zip(items, probabilities):
            best = OPTION_KEYS[int(np.argmax(probs))]
            results.append(CorefResult(best, item.options[best],
                                       {k: float(p) for k, p in zip(OPTION_KEYS, probs)}))
        return results

    def resolve(self, turns: Sequence[Mapping[str, Any]], options: Mapping[str, str]) -> CorefResult:
        """`turns` and `options` in the API's JSON shape."""
        return self.resolve_items([CorefItem.from_json({"turns": turns, "options": options})])[0]

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.scorer.save_pretrained(path)
        config = {"architecture": self.architecture, **self.settings}
        (path / CONFIG_FILE).write_text(json.dumps(config, ensure_ascii=False, indent=2), encoding="utf-8")

    @classmethod
    def from_pretrained(cls, path: str | Path, embedder: TextEmbedder | None = None,
                        embedder_path: str | None = None) -> "CorefResolver":
        """Load what `save_pretrained` wrote. For the feature scorer, `embedder` (or one loaded from
        `embedder_path`, default: the path recorded at training) computes the cosine features."""
        path = Path(path)
        settings = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        architecture = settings.pop("architecture")
        if architecture == "causal_lm":
            scorer: OptionScorer = CausalLMScorer.from_pretrained(path, settings["max_length"])
        else:
            scorer = FeatureScorer.from_pretrained(path, embedder, embedder_path)
        return cls(scorer, architecture, settings)


def accuracy(resolver: CorefResolver, items: Sequence[CorefItem]) -> dict[str, float]:
    """Object-level accuracy, photo-level accuracy (the chosen option is from the right photo), n."""
    results = resolver.resolve_items(items)
    right = sum(r.answer == item.answer for r, item in zip(results, items))
    right_photo = sum(option_owner(item, r.answer) == option_owner(item, item.answer) for r, item in zip(results, items))
    n = len(items)
    return {"accuracy": right / max(1, n), "photo_accuracy": right_photo / max(1, n), "n": n}


@register_loader("coref")
def load_coref(config: Mapping[str, Any]) -> CorefResolver:
    return CorefResolver.from_pretrained(config["COREF_MODEL"], embedder_path=config.get("E5_BASE_MODEL"))
