"""The knowledge graph: build, synonym edges, matching, explanations, save/load."""
from __future__ import annotations

import pytest

from kg.graph import DOCUMENT, EXACT, PARTIAL, SYNONYM, KnowledgeGraph, query_terms
from trainers.data import FaqRecord, Paraphrase

RECORDS = [
    FaqRecord("M-001", "이사화물", "이사화물 통관예약을 하면 뭐가 좋나요?", "예약한 날짜에 통관이 진행되어 기다리지 않습니다.",
              ("이사화물", "통관예약", "장점"), (Paraphrase("이삿짐 통관 예약의 이점", ("이삿짐", "통관 예약", "이점")),)),
    FaqRecord("D-001", "개인통관고유부호", "개인통관고유부호는 어디서 발급받나요?", "관세청 누리집에서 본인 인증 후 발급합니다.",
              ("개인통관고유부호", "발급"), ()),
    FaqRecord("T-001", "면세범위", "여행자 면세한도는 얼마인가요?", "해외에서 산 물품은 1인당 800달러까지 면세입니다.",
              ("여행자", "면세한도"), ()),
    FaqRecord("G-001", "세금 납부", "관세는 어떻게 납부하나요?", "전자납부번호로 인터넷뱅킹에서 납부합니다.",
              ("관세", "납부 방법"), ()),
]
SYNONYMS = [["개인통관고유부호", "P코드", "통관번호"], ["면세한도", "면세 범위"]]


@pytest.fixture(scope="module")
def graph() -> KnowledgeGraph:
    return KnowledgeGraph.build(RECORDS, SYNONYMS)


def test_build_has_documents_keywords_categories_and_synonym_edges(graph):
    stats = graph.stats()
    assert stats["documents"] == 4 and stats["categories"] == 4
    assert stats["keywords"] > 10
    assert stats["synonym_edges"] == 3 + 1
    assert stats["nodes"] == stats["documents"] + stats["keywords"] + stats["categories"]
    assert graph.graph.nodes["doc:M-001"]["kind"] == DOCUMENT


def test_exact_keyword_finds_its_document_and_explains_how(graph):
    hit = graph.search(["통관예약"], k=3)[0]
    assert hit.doc_id == "M-001"
    assert hit.matches[0].via == EXACT and hit.matches[0].source == "question"
    assert hit.explanation()[0] == {"query": "통관예약", "node": "통관예약", "via": EXACT, "source": "question"}


def test_synonym_edge_lets_the_other_synonym_find_the_document():
    query = ["P코드"]
    with_synonyms = KnowledgeGraph.build(RECORDS, SYNONYMS).search(query, k=3)
    without = KnowledgeGraph.build(RECORDS, SYNONYMS, use_synonyms=False).search(query, k=3)
    assert with_synonyms and with_synonyms[0].doc_id == "D-001"
    assert with_synonyms[0].matches[0].via == SYNONYM
    assert all(h.doc_id != "D-001" for h in without)


def test_partial_match_shares_morphemes(graph):
    hits = graph.search(["납부방법안내"], k=3)
    assert hits[0].doc_id == "G-001"
    assert hits[0].matches[0].via == PARTIAL


def test_ranking_by_several_keywords(graph):
    assert graph.search(query_terms("여행 가서 산 물건 면세 범위가 어떻게 되나요?"), k=2)[0].doc_id == "T-001"
    assert graph.search(query_terms("관세를 인터넷뱅킹으로 납부"), k=2)[0].doc_id == "G-001"
    assert graph.search([], k=3) == [] and graph.search(["   "], k=3) == []


def test_query_terms_give_compounds_and_their_nouns():
    assert query_terms("이사화물 통관예약을 하면 뭐가 좋나요?") == ["이사화물", "이사", "화물", "통관예약", "통관", "예약"]
    assert query_terms("") == []


def test_save_and_load_round_trip(graph, tmp_path):
    path = graph.save(tmp_path / "graph")
    assert path.name == "graph.json"
    loaded = KnowledgeGraph.load(tmp_path / "graph")
    assert loaded.stats() == graph.stats()
    assert loaded.settings == graph.settings
    assert [(h.doc_id, h.score) for h in loaded.search(["P코드", "발급"], 3)] == \
           [(h.doc_id, h.score) for h in graph.search(["P코드", "발급"], 3)]
