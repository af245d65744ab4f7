"""The knowledge graph: keywords, documents and categories in one networkx graph, and retrieval over it.

Nodes are `kw:<normalised keyword>`, `doc:<doc_id>` and `cat:<category>`. A document links to the
keywords of its question, of its paraphrases and of its answer (labelled keywords and the nouns of the
text), with a weight that says how much that source speaks for the document. Keywords link to each
other when the bundled synonym groups say they mean the same thing: the seed's graph reached only 20 %
top-1 because of 이음동의어.

A query's keywords reach keyword nodes exactly, through one synonym hop, or partially (sharing
morphemes); a document's score is the sum over query keywords of the best path to it (match weight x
edge weight x the keyword's idf). Measured against personalised PageRank from the matched nodes:
this is 15-20 points of top-1 better on held-out paraphrases and 20x faster, so it is the one kept.
Every hit says which query keyword reached it through which node, how, and from which source.

Stored as node-link JSON (`graph.json`), portable and loaded once by the app.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from itertools import combinations
from pathlib import Path
from typing import Iterable

import networkx as nx

from kg.normalize import NOUN_TAGS, clean_text, keyword_morphemes, kiwi, normalize_keyword
from trainers.data import FaqRecord

GRAPH_FILE = "graph.json"

KEYWORD, DOCUMENT, CATEGORY = "keyword", "document", "category"
# Edge kinds.
MENTIONS, SYNONYM, IN_CATEGORY = "mentions", "synonym", "in_category"
# Where a document's keyword comes from.
QUESTION, PARAPHRASE, ANSWER = "question", "paraphrase", "answer"
# How a query keyword reached a keyword node (or SYNONYM).
EXACT, PARTIAL = "exact", "partial"


@dataclass(frozen=True)
class GraphSettings:
    """Weights of the graph, stored with it so that a loaded graph scores exactly as it was built.

    Measured on held-out paraphrases and dev_queries.jsonl (weighted overlap scoring): paraphrases
    count for less than the question (they tell stories with incidental nouns; 0.8 -> 0.5 gave +5
    points top-1), answers for a little more than paraphrases, partial matches almost as much as exact.
    """

    question_weight: float = 1.0
    paraphrase_weight: float = 0.5
    answer_weight: float = 0.6
    # Match weight of a node reached through a synonym edge, and of a partial match (x overlap).
    synonym_weight: float = 0.8
    partial_weight: float = 0.8
    # Least morpheme overlap (Jaccard) between a query keyword and a node for a partial match.
    partial_min_overlap: float = 0.5


@dataclass(frozen=True)
class Match:
    """One query keyword reaching a document: through which keyword node, how, from which source."""

    query: str
    node: str
    via: str  # exact | synonym | partial
    source: str  # question | paraphrase | answer


@dataclass
class GraphHit:
    """A retrieved document, with every query keyword that reached it (its explanation)."""

    doc_id: str
    score: float
    matches: list[Match] = field(default_factory=list)

    def explanation(self) -> list[dict[str, str]]:
        """The matches as JSON-ready dicts: {query, node, via, source}."""
        return [asdict(m) for m in self.matches]


def _kw(key: str) -> str:
    return f"kw:{key}"


def _doc(doc_id: str) -> str:
    return f"doc:{doc_id}"


def _cat(category: str) -> str:
    return f"cat:{category}"


def query_terms(text: str) -> list[str]:
    """Keywords of a message without the extractor model: nouns, and the noun compound of each word.

    `이사화물 통관예약을` -> 이사화물, 이사, 화물, 통관예약, 통관, 예약: compounds reach the graph's
    labelled keywords exactly, single nouns reach them partially.
    """
    words: dict[tuple[int, int], list[str]] = defaultdict(list)
    for token in kiwi().tokenize(clean_text(text)):
        if token.tag in NOUN_TAGS:
            words[token.sent_position, token.word_position].append(token.form.lower())
    terms: list[str] = []
    for run in words.values():
        if len(run) > 1:
            terms.append("".join(run))
        terms.extend(run)
    return list(dict.fromkeys(terms))


class KnowledgeGraph:
    """The graph plus derived lookups; build it from records, or load what `save` wrote."""

    def __init__(self, graph: nx.Graph, settings: GraphSettings = GraphSettings()):
        self.graph = graph
        self.settings = settings
        self._index()

    # --- building ------------------------------------------------------------------------------
    @classmethod
    def build(cls, records: Iterable[FaqRecord], synonym_groups: list[list[str]], use_synonyms: bool = True,
              settings: GraphSettings = GraphSettings()) -> "KnowledgeGraph":
        builder = _Builder(nx.Graph(), settings)
        for record in records:
            builder.add_document(record)
        if use_synonyms:
            for group in synonym_groups:
                builder.link_synonyms(group)
        return cls(builder.graph, settings)

    # --- persistence ---------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write `graph.json` (settings + node-link data) into `directory`; returns its path."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        data = {"settings": asdict(self.settings), "graph": nx.node_link_data(self.graph, edges="edges")}
        path = directory / GRAPH_FILE
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: Path) -> "KnowledgeGraph":
        data = json.loads((Path(directory) / GRAPH_FILE).read_text(encoding="utf-8"))
        graph = nx.node_link_graph(data["graph"], directed=False, multigraph=False, edges="edges")
        return cls(graph, GraphSettings(**data["settings"]))

    def stats(self) -> dict[str, int]:
        nodes = defaultdict(int)
        for _, kind in self.graph.nodes(data="kind"):
            nodes[kind] += 1
        edges = defaultdict(int)
        for _, _, kind in self.graph.edges(data="kind"):
            edges[kind] += 1
        return {"nodes": self.graph.number_of_nodes(), "edges": self.graph.number_of_edges(),
                "documents": nodes[DOCUMENT], "keywords": nodes[KEYWORD], "categories": nodes[CATEGORY],
                **{f"{kind}_edges": n for kind, n in sorted(edges.items())}}

    # --- retrieval -----------------------------------------------------------------------------
    def _index(self) -> None:
        """Derived lookups (not stored): morpheme -> keyword nodes, and each keyword node's idf."""
        self._by_morpheme: dict[str, set[str]] = defaultdict(set)
        self._idf: dict[str, float] = {}
        n_docs = sum(1 for _, kind in self.graph.nodes(data="kind") if kind == DOCUMENT)
        for node, data in self.graph.nodes(data=True):
            if data["kind"] != KEYWORD:
                continue
            df = sum(1 for _, _, kind in self.graph.edges(node, data="kind") if kind == MENTIONS)
            self._idf[node] = math.log(1 + n_docs / (1 + df))
            for morpheme in data["morphemes"]:
                self._by_morpheme[morpheme].add(node)

    def match(self, keyword: str) -> dict[str, tuple[str, float]]:
        """Keyword nodes `keyword` reaches: {node: (exact|synonym|partial, match weight)}, best way per node."""
        s = self.settings
        found: dict[str, tuple[str, float]] = {}

        def offer(node: str, via: str, weight: float) -> None:
            if weight > found.get(node, ("", 0.0))[1]:
                found[node] = (via, weight)

        node = _kw(normalize_keyword(keyword))
        if node in self.graph:
            offer(node, EXACT, 1.0)
            for other, edge in self.graph[node].items():
                if edge["kind"] == SYNONYM:
                    offer(other, SYNONYM, s.synonym_weight)
        parts = set(keyword_morphemes(keyword))
        for candidate in set().union(*(self._by_morpheme.get(m, set()) for m in parts)):
            theirs = set(self.graph.nodes[candidate]["morphemes"])
            overlap = len(parts & theirs) / len(parts | theirs)
            if overlap >= s.partial_min_overlap:
                offer(candidate, PARTIAL, s.partial_weight * overlap)
        return found

    def search(self, keywords: list[str], k: int) -> list[GraphHit]:
        """The k best documents for `keywords`, best first, each with how the keywords reached it."""
        hits: dict[str, GraphHit] = {}
        for query in dict.fromkeys(q for q in keywords if q.strip()):
            for doc, (value, match) in self._best_paths(query).items():
                hit = hits.setdefault(doc, GraphHit(self.graph.nodes[doc]["doc_id"], 0.0))
                hit.score += value
                hit.matches.append(match)
        return sorted(hits.values(), key=lambda h: (-h.score, h.doc_id))[:k]

    def _best_paths(self, query: str) -> dict[str, tuple[float, Match]]:
        """For one query keyword, each reachable document's best value and the path that gives it."""
        best: dict[str, tuple[float, Match]] = {}
        for node, (via, weight) in self.match(query).items():
            for doc, edge in self.graph[node].items():
                if edge["kind"] != MENTIONS:
                    continue
                value = weight * edge["weight"] * self._idf[node]
                if value > best.get(doc, (0.0, None))[0]:
                    best[doc] = (value, Match(query, self.graph.nodes[node]["label"], via, edge["origin"]))
        return best


class _Builder:
    """Adds documents and synonym groups to a graph (only `KnowledgeGraph.build` uses it)."""

    def __init__(self, graph: nx.Graph, settings: GraphSettings):
        self.graph = graph
        self.settings = settings

    def add_keyword(self, keyword: str) -> str | None:
        key = normalize_keyword(keyword)
        if not key:
            return None
        node = _kw(key)
        if node not in self.graph:
            self.graph.add_node(node, kind=KEYWORD, label=clean_text(keyword),
                                morphemes=list(keyword_morphemes(keyword)))
        return node

    def add_document(self, record: FaqRecord) -> None:
        doc = _doc(record.doc_id)
        self.graph.add_node(doc, kind=DOCUMENT, doc_id=record.doc_id, label=record.question)
        category = _cat(record.category)
        self.graph.add_node(category, kind=CATEGORY, label=record.category)
        self.graph.add_edge(doc, category, kind=IN_CATEGORY, weight=1.0)
        s = self.settings
        sources = [(QUESTION, s.question_weight, [*record.keywords, *query_terms(record.question)])]
        sources += [(PARAPHRASE, s.paraphrase_weight, [*p.keywords, *query_terms(p.text)]) for p in record.paraphrases]
        sources.append((ANSWER, s.answer_weight, query_terms(record.answer)))
        for source, weight, keywords in sources:
            for keyword in keywords:
                node = self.add_keyword(keyword)
                if node is not None:
                    self.mention(doc, node, source, weight)

    def mention(self, doc: str, node: str, source: str, weight: float) -> None:
        """Link doc and keyword; a keyword found in several sources keeps its strongest one.

        The source is stored as `origin`: node-link JSON reserves `source` for the edge's first end.
        """
        if not self.graph.has_edge(doc, node):
            self.graph.add_edge(doc, node, kind=MENTIONS, weight=weight, origin=source)
        elif weight > self.graph.edges[doc, node]["weight"]:
            self.graph.edges[doc, node].update(weight=weight, origin=source)

    def link_synonyms(self, terms: Iterable[str]) -> None:
        nodes = {n for n in (self.add_keyword(t) for t in terms) if n is not None}
        for a, b in combinations(sorted(nodes), 2):
            if not self.graph.has_edge(a, b):
                self.graph.add_edge(a, b, kind=SYNONYM, weight=self.settings.synonym_weight)

