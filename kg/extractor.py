"""The keyword extractor: a BART seq2seq model that writes a question's keywords as a comma-separated list.

`이사화물 통관예약을 하면 뭐가 좋나요?` -> `이사화물, 통관, 예약, 장점` (seed 002: keyword extraction is
summarisation, so a summarisation architecture fine-tuned on (question, keywords) pairs does it).
Whatever `trainers.kobart` wrote, `KeywordExtractor.from_pretrained` loads: the Hugging Face model and
tokenizer plus `extractor.json`, the generation settings, so serving decodes exactly as evaluation did.
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from transformers import AutoTokenizer, BartForConditionalGeneration, PreTrainedTokenizerBase

from kg.normalize import clean_text, keyword_morphemes, kiwi, normalize_keyword

SETTINGS_FILE = "extractor.json"
# How the model writes keywords (the training targets use it too).
KEYWORD_SEPARATOR = ", "
# Separators the parser accepts, in case a model (or a real KoBART) writes others.
_SPLIT = re.compile(r"[,，、;；/\n|]+")


@dataclass(frozen=True)
class ExtractorSettings:
    """Input/output lengths and decoding; stored next to the model."""

    # Longer inputs keep their first max_input_tokens tokens (the API caps messages at 1000 characters).
    max_input_tokens: int = 128
    max_new_tokens: int = 48
    num_beams: int = 4
    # Beam search must not loop: no repeated 3-grams (a repeated keyword repeats one).
    no_repeat_ngram_size: int = 3
    repetition_penalty: float = 1.2
    max_keywords: int = 8
    # Write input and targets as kiwipiepy morphemes separated by spaces (`이사 화물 통관 예약 을 ...`):
    # a small model trained from scratch then learns to copy morphemes instead of subword fragments.
    # Keywords come out with their spacing folded (`신고 시점` -> `신고시점`). Off for real KoBART.
    presegment: bool = False


def segment(text: str) -> str:
    """Text as its kiwipiepy morphemes, space-separated (nothing dropped: particles and endings stay)."""
    return " ".join(token.form for token in kiwi().tokenize(clean_text(text)))


def load_settings(name_or_path: str | Path) -> ExtractorSettings:
    """The settings stored with a checkpoint; defaults for one that has none (a downloaded KoBART)."""
    path = Path(name_or_path) / SETTINGS_FILE
    return ExtractorSettings(**json.loads(path.read_text())) if path.is_file() else ExtractorSettings()


def save_settings(settings: ExtractorSettings, directory: Path) -> None:
    (Path(directory) / SETTINGS_FILE).write_text(json.dumps(asdict(settings), indent=2))


def parse_keywords(generated: str, max_keywords: int | None = None, joined: bool = False) -> list[str]:
    """Split a generated list into clean keywords, dropping empties and duplicates (by normalised form).

    joined: the keywords were written as space-separated morphemes; glue each one back together
    (NFKC in `clean_text` recomposes a stem with a jamo ending: `하 ᆯ` -> `할`).
    """
    seen: set[str] = set()
    keywords: list[str] = []
    for piece in _SPLIT.split(generated):
        keyword = clean_text(piece.replace(" ", "") if joined else piece)
        key = normalize_keyword(keyword) if keyword else ""
        if key and key not in seen:
            seen.add(key)
            keywords.append(keyword)
    return keywords[:max_keywords] if max_keywords else keywords


def encode_inputs(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_tokens: int) -> dict[str, torch.Tensor]:
    """`<s> text </s>` per (already prepared) text, truncated to max_tokens, right-padded.

    Built by hand instead of relying on the tokenizer's post-processor: KoBART's tokenizer adds no
    special tokens on its own, ours would, and training and inference must see the same thing.
    """
    body = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    rows = [[tokenizer.bos_token_id, *ids[: max_tokens - 2], tokenizer.eos_token_id] for ids in body]
    return pad_rows(rows, tokenizer.pad_token_id)


def encode_targets(tokenizer: PreTrainedTokenizerBase, targets: Sequence[str], max_tokens: int) -> torch.Tensor:
    """Label ids `target </s>`, padded with -100 (ignored by the loss)."""
    body = tokenizer(list(targets), add_special_tokens=False)["input_ids"]
    rows = [[*ids[: max_tokens - 1], tokenizer.eos_token_id] for ids in body]
    return pad_rows(rows, -100)["input_ids"]


def pad_rows(rows: list[list[int]], pad_id: int) -> dict[str, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    return {"input_ids": ids, "attention_mask": mask}


class KeywordExtractor:
    def __init__(self, model: BartForConditionalGeneration, tokenizer: PreTrainedTokenizerBase,
                 settings: ExtractorSettings = ExtractorSettings()):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.settings = settings

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: str = "cpu") -> "KeywordExtractor":
        """A trained extractor, or (for fine-tuning) any BART checkpoint: a hub name or a directory."""
        model = BartForConditionalGeneration.from_pretrained(str(name_or_path)).to(device)
        return cls(model, AutoTokenizer.from_pretrained(str(name_or_path)), load_settings(name_or_path))

    def save_pretrained(self, path: str | Path) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))
        save_settings(self.settings, path)

    def source_text(self, text: str) -> str:
        """What the model reads for `text`."""
        return segment(text) if self.settings.presegment else clean_text(text)

    def target_text(self, keywords: Iterable[str]) -> str:
        """What the model learns to write for `keywords`."""
        prepare = segment if self.settings.presegment else clean_text
        return KEYWORD_SEPARATOR.join(p for p in (prepare(k) for k in keywords) if p)

    def extract(self, text: str) -> list[str]:
        return self.extract_batch([text])[0]

    @torch.no_grad()
    def extract_batch(self, texts: Sequence[str], num_beams: int | None = None) -> list[list[str]]:
        """Keywords per text; blank texts give [] without running the model."""
        s = self.settings
        todo = [i for i, t in enumerate(texts) if clean_text(t)]
        results: list[list[str]] = [[] for _ in texts]
        if not todo:
            return results
        batch = encode_inputs(self.tokenizer, [self.source_text(texts[i]) for i in todo], s.max_input_tokens)
        batch = {k: v.to(self.model.device) for k, v in batch.items()}
        output = self.model.generate(
            **batch, max_new_tokens=s.max_new_tokens, num_beams=num_beams or s.num_beams,
            no_repeat_ngram_size=s.no_repeat_ngram_size, repetition_penalty=s.repetition_penalty,
        )
        for i, generated in zip(todo, self.tokenizer.batch_decode(output, skip_special_tokens=True)):
            results[i] = parse_keywords(generated, s.max_keywords, joined=s.presegment)
        return results


@dataclass(frozen=True)
class KeywordScores:
    """Micro-averaged precision/recall/F1 of predicted against gold keywords, at two granularities.

    `keyword_*` counts a predicted keyword right when its normalised form equals a gold one's
    (`통관 예약` = `통관예약`); `morpheme_*` compares the bags of content morphemes, which gives
    partial credit for `신고 시점` against `신고`, `시점` (fair to a baseline that lists single nouns).
    """

    keyword_precision: float
    keyword_recall: float
    keyword_f1: float
    morpheme_precision: float
    morpheme_recall: float
    morpheme_f1: float


def _prf(hits: int, predicted: int, gold: int) -> tuple[float, float, float]:
    p = hits / predicted if predicted else 0.0
    r = hits / gold if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score_keywords(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> KeywordScores:
    kw = [0, 0, 0]
    mo = [0, 0, 0]
    for pred, ref in zip(predicted, gold, strict=True):
        p_keys, g_keys = {normalize_keyword(k) for k in pred}, {normalize_keyword(k) for k in ref}
        kw[0] += len(p_keys & g_keys)
        kw[1] += len(p_keys)
        kw[2] += len(g_keys)
        p_morph = {m for k in pred for m in keyword_morphemes(k)}
        g_morph = {m for k in ref for m in keyword_morphemes(k)}
        mo[0] += len(p_morph & g_morph)
        mo[1] += len(p_morph)
        mo[2] += len(g_morph)
    return KeywordScores(*_prf(*kw), *_prf(*mo))
