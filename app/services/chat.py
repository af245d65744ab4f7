"""One chat turn: retrieval with the session's context, the route decision, the reply.

Routes (the calibrated confidence is P(the top FAQ is the right one)):
- confidence >= answer threshold: the FAQ's official answer (route "retrieval", decision "answer");
- between the suggest and answer thresholds: the top FAQ's answer, introduced as a guess
  ("혹시 이 질문을 찾으셨나요?") so a near miss is visible as one (route "retrieval", decision "suggest");
- below: the generative small-talk fallback (route "generation"), checked before it is sent and
  replaced by a polite pointer to 관세청 고객지원센터 125 and the closest FAQs when unusable.

Follow-ups: a message that leans on the previous turn ("그럼 술은요?") is also retrieved with the
previous message prepended; the contextual reading wins only when it is clearly more confident.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from app.services.pipeline import DocInfo, HybridRetriever, Retrieval

SUGGEST_PREFIX = "혹시 이 질문을 찾으셨나요? 「{question}」\n\n"


@dataclass(frozen=True)
class RoutingSettings:
    answer_threshold: float
    suggest_threshold: float
    # How much more confident the reading with the previous turn must be to replace the literal one.
    followup_margin: float = 0.1


@dataclass
class Turn:
    """The outcome of one message: what to say and why."""

    retrieval: Retrieval
    resolved_text: str
    used_context: bool
    route: str
    decision: str
    answer: str
    source: DocInfo | None


def retrieve_in_context(retriever: HybridRetriever, text: str, previous_text: str | None,
                        settings: RoutingSettings) -> tuple[Retrieval, str, bool]:
    """Retrieve `text` alone and, if there is a previous turn, with it; keep the clearly better reading."""
    alone = retriever.retrieve(text)
    if not previous_text or alone.confidence >= settings.answer_threshold:
        return alone, alone.text, False
    combined_text = f"{previous_text} {text}"
    combined = retriever.retrieve(combined_text)
    if combined.confidence >= alone.confidence + settings.followup_margin:
        return combined, combined.text, True
    return alone, alone.text, False


def decide(confidence: float, settings: RoutingSettings) -> str:
    if confidence >= settings.answer_threshold:
        return "answer"
    if confidence >= settings.suggest_threshold:
        return "suggest"
    return "fallback"


FallbackFn = Callable[[str, list[str]], str]


def answer_turn(retriever: HybridRetriever, text: str, previous_text: str | None,
                settings: RoutingSettings, fallback: FallbackFn) -> Turn:
    """Run retrieval and the routing policy for one message (no database work here)."""
    retrieval, resolved, used_context = retrieve_in_context(retriever, text, previous_text, settings)
    decision = decide(retrieval.confidence, settings)
    documents = retriever.index.documents
    if decision == "fallback" or retrieval.top is None:
        suggestions = [documents[c.doc_id].question for c in retrieval.candidates[:3]]
        return Turn(retrieval, resolved, used_context, "generation", "fallback", fallback(text, suggestions), None)
    doc = documents[retrieval.top.doc_id]
    answer = doc.answer if decision == "answer" else SUGGEST_PREFIX.format(question=doc.question) + doc.answer
    return Turn(retrieval, resolved, used_context, "retrieval", decision, answer, doc)
