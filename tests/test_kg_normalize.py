"""Korean normalisation (kiwipiepy) and the lexical retrievers (morpheme BM25, character n-grams)."""
from __future__ import annotations

from collections import Counter
from dataclasses import replace

from kg.bm25 import Bm25Index
from kg.chargrams import CharNgramIndex, char_ngrams
from kg.normalize import clean_text, morphemes, normalize_keyword, nouns
from trainers.data import FaqRecord, Paraphrase


def test_keywords_written_differently_normalise_to_one_form():
    assert normalize_keyword("통관 예약") == normalize_keyword("통관예약") == normalize_keyword("통관예약하기")
    assert normalize_keyword("HS 코드") == normalize_keyword("hs코드")
    assert normalize_keyword("  관세  면제 ") == "관세면제"


def test_keyword_without_content_morpheme_keeps_its_surface():
    assert normalize_keyword("!!") == ""
    assert normalize_keyword("—") == ""


def test_morphemes_keep_content_in_base_form_and_drop_particles():
    tokens = morphemes("이사화물 통관예약을 하면 뭐가 좋나요?")
    assert tokens[:4] == ["이사", "화물", "통관", "예약"]
    assert "좋다" in tokens
    assert "을" not in tokens and "?" not in tokens
    assert morphemes("   ") == []


def test_nouns_are_unique_and_ordered():
    assert nouns("세금 세금 내는 세금 방법") == ["세금", "방법"]


def test_clean_text_trims_punctuation_and_spacing():
    assert clean_text("  통관\u3000예약 ,") == "통관 예약"


def _record(doc_id: str, question: str, answer: str, paraphrases: tuple[str, ...] = ()) -> FaqRecord:
    return FaqRecord(doc_id, "cat", question, answer, (), tuple(Paraphrase(p) for p in paraphrases))


DOCS = [
    _record("M-001", "이사화물 통관예약은 어떻게 하나요?", "이삿짐 통관일을 세관에 미리 예약합니다."),
    _record("D-001", "개인통관고유부호는 어디서 발급받나요?", "관세청 누리집에서 본인 인증 후 발급합니다.",
            ("P코드 발급 방법",)),
    _record("T-001", "여행자 면세한도는 얼마인가요?", "해외에서 산 물품은 1인당 800달러까지 면세입니다."),
]


def test_bm25_ranks_the_obvious_document_first(tmp_path):
    index = Bm25Index.build(DOCS)
    assert index.search("개인통관고유부호 발급받는 곳", k=3)[0][0] == "D-001"
    assert index.search("여행 면세한도 얼마", k=3)[0][0] == "T-001"
    index.save(tmp_path / "bm25")
    loaded = Bm25Index.load(tmp_path / "bm25")
    assert loaded.search("이사화물 통관예약", k=1) == index.search("이사화물 통관예약", k=1)
    assert loaded.search("이사화물 통관예약", k=1)[0][0] == "M-001"


def test_bm25_query_without_known_words_finds_nothing():
    index = Bm25Index.build(DOCS)
    assert index.search("", k=3) == []
    assert index.search("고양이", k=3) == []


def test_labelled_messages_let_lexical_signals_match_user_wording():
    slang = "팔백 넘게 긁었는데 어캄"
    for build in (Bm25Index.build, CharNgramIndex.build):
        assert build(DOCS).search(slang, k=3) == []  # nothing in the FAQ text says 팔백, 긁다 or 어캄
        taught = [replace(d, labelled_messages=("해외서 팔백 넘게 긁으면 어캄?",)) if d.doc_id == "T-001" else d
                  for d in DOCS]
        assert build(taught).search(slang, k=3)[0][0] == "T-001"


def test_char_ngrams_ignore_spacing():
    assert char_ngrams("면세 한도") == char_ngrams("면세한도") == char_ngrams(" 면세\t한도 ")
    assert char_ngrams("면세한도") == Counter({"면세": 1, "세한": 1, "한도": 1, "면세한": 1, "세한도": 1})
    assert char_ngrams("면") == Counter()


def test_char_ngram_index_survives_dropped_spaces_and_a_typo(tmp_path):
    index = CharNgramIndex.build(DOCS)
    assert index.search("이사화물통관예약", k=1)[0][0] == "M-001"  # no spaces at all
    assert index.search("개인통관고유부오 발급", k=1)[0][0] == "D-001"  # one syllable mistyped
    hits = index.search("여행면세한도얼마", k=3)
    assert hits[0][0] == "T-001"
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True) and 0 < hits[0][1] <= 1
    index.save(tmp_path / "chars")
    loaded = CharNgramIndex.load(tmp_path / "chars")
    assert loaded.search("여행면세한도얼마", k=3) == hits


def test_char_ngram_query_without_known_grams_finds_nothing():
    index = CharNgramIndex.build(DOCS)
    assert index.search("", k=3) == []
    assert index.search("고양이 강아지", k=3) == []
