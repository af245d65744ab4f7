"""Korean tokenisation and keyword normalisation with kiwipiepy, shared by BM25, the graph and evals.

Users write the same concept many ways (`통관예약을`, `통관 예약`, `통관예약하기`); comparing keywords
and documents on kiwipiepy's content morphemes in base form folds spacing, particles and endings away.
One Kiwi instance serves the whole process: it takes about a second and a few hundred MB to load, so it
is created on first use, never at import time.
"""
from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache

from kiwipiepy import Kiwi

# Morpheme tags that carry content: nouns, numerals, verb/adjective stems, roots, foreign words,
# numbers, hanja. Particles, endings, suffixes, pronouns, adverbs and punctuation are dropped.
NOUN_TAGS = frozenset({"NNG", "NNP", "NR", "SL", "SN", "SH", "XR"})
PREDICATE_TAGS = frozenset({"VV", "VA"})
CONTENT_TAGS = NOUN_TAGS | PREDICATE_TAGS
# What lexical retrieval indexes: content morphemes plus pronouns (`언제`, `얼마`), adverbs (`미리`, `안`)
# and bound nouns (`불`, `개`). Measured with BM25 on dev_queries_hard: top-1 0.19 -> 0.29 (0.77 -> 0.80
# on dev_queries, 0.52 -> 0.55 on held-out paraphrases); BM25's idf keeps the frequent ones cheap.
LEXICAL_TAGS = CONTENT_TAGS | frozenset({"NP", "MAG", "NNB"})
# Dictionary form of a verb/adjective stem (`좋` -> `좋다`), so predicates read as base forms.
PREDICATE_ENDING = "다"
# Separators and punctuation a keyword should neither start nor end with.
_EDGE_PUNCT = re.compile(r"^[\s\W_]+|[\s\W_]+$")
_SPACES = re.compile(r"\s+")

_kiwi: Kiwi | None = None
_kiwi_lock = threading.Lock()


def kiwi() -> Kiwi:
    """The process-wide Kiwi analyser, loaded on first use."""
    global _kiwi
    if _kiwi is None:
        with _kiwi_lock:
            if _kiwi is None:
                _kiwi = Kiwi()
    return _kiwi


def clean_text(text: str) -> str:
    """NFKC, whitespace collapsed, surrounding punctuation trimmed: how a keyword is displayed."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFKC", text)).strip()
    return _EDGE_PUNCT.sub("", text)


def _base_form(form: str, tag: str) -> str:
    form = form.lower()
    return form + PREDICATE_ENDING if tag in PREDICATE_TAGS else form


def morphemes(text: str, tags: frozenset[str] = CONTENT_TAGS) -> list[str]:
    """Content morphemes of `text` in base form, lower-cased, in order (duplicates kept, for BM25)."""
    text = unicodedata.normalize("NFKC", text)
    if not text.strip():
        return []
    return [_base_form(tok.form, tok.tag) for tok in kiwi().tokenize(text) if tok.tag in tags]


def lexical_tokens(text: str) -> list[str]:
    """The morphemes lexical retrieval (BM25) indexes and queries with (see LEXICAL_TAGS)."""
    return morphemes(text, LEXICAL_TAGS)


def nouns(text: str) -> list[str]:
    """Unique noun-like morphemes of `text`, in order of first appearance."""
    return list(dict.fromkeys(morphemes(text, NOUN_TAGS)))


@lru_cache(maxsize=65536)
def keyword_morphemes(keyword: str) -> tuple[str, ...]:
    """The content morphemes of one keyword (`신고 가능 시기` -> (신고, 가능, 시기))."""
    return tuple(morphemes(keyword))


@lru_cache(maxsize=65536)
def normalize_keyword(keyword: str) -> str:
    """The comparison key of a keyword: content morphemes in base form, spacing folded.

    `통관 예약`, `통관예약` and `통관예약하기` all become `통관예약`. A keyword without any content
    morpheme (rare: a symbol, an ending) keeps its cleaned, lower-cased, space-free surface form.
    """
    parts = keyword_morphemes(keyword)
    if parts:
        return "".join(parts)
    return clean_text(keyword).lower().replace(" ", "")
