"""The routing policy and the follow-up rule, on a scripted retriever (no models)."""
from __future__ import annotations

from app.services.chat import SUGGEST_PREFIX, RoutingSettings, answer_turn, decide, retrieve_in_context
from app.services.fusion import Candidate
from app.services.pipeline import DocInfo, Retrieval

SETTINGS = RoutingSettings(answer_threshold=0.5, suggest_threshold=0.25, followup_margin=0.1, followup_max_chars=12)
DOCS = {d: DocInfo(d, "면세범위", f"{d} 질문", f"{d} 답변") for d in ("T-001", "T-017", "T-019")}


class ScriptedRetriever:
    """Answers each text with a fixed (doc_id, confidence) and remembers what it was asked."""

    def __init__(self, answers: dict[str, tuple[str, float]]):
        self.answers = answers
        self.asked: list[str] = []
        self.index = type("Index", (), {"documents": DOCS})()

    @staticmethod
    def keyword_fn(text: str) -> list[str]:
        return [w for w in text.split() if len(w) > 1 and not w.endswith("요?")]

    def retrieve(self, text: str) -> Retrieval:
        self.asked.append(text)
        doc_id, confidence = self.answers.get(text, ("T-019", 0.05))
        return Retrieval(text, [], [Candidate(doc_id, probability=confidence)], confidence)


def test_decide_has_three_bands():
    assert [decide(c, SETTINGS) for c in (0.9, 0.5, 0.3, 0.25, 0.1)] == [
        "answer", "answer", "suggest", "suggest", "fallback"]


def test_short_follow_up_borrows_the_previous_turns_keywords():
    retriever = ScriptedRetriever({"술은요?": ("T-019", 0.1), "면세 한도 술은요?": ("T-017", 0.8)})
    retrieval, text, used = retrieve_in_context(retriever, "술은요?", "면세 한도 얼마예요?", SETTINGS)
    assert used and text == "면세 한도 술은요?" and retrieval.top.doc_id == "T-017"


def test_contextual_reading_must_be_clearly_more_confident():
    retriever = ScriptedRetriever({"술은요?": ("T-019", 0.3), "면세 한도 술은요?": ("T-017", 0.35)})
    retrieval, text, used = retrieve_in_context(retriever, "술은요?", "면세 한도 얼마예요?", SETTINGS)
    assert not used and text == "술은요?" and retrieval.top.doc_id == "T-019"


def test_confident_or_long_messages_stand_alone():
    confident = ScriptedRetriever({"담배는요?": ("T-019", 0.9)})
    assert retrieve_in_context(confident, "담배는요?", "면세 한도 얼마예요?", SETTINGS)[2] is False
    assert confident.asked == ["담배는요?"]
    long_message = "해외에서 산 담배는 몇 갑까지 세금 없이 가져와요?"
    unsure = ScriptedRetriever({long_message: ("T-019", 0.1)})
    assert retrieve_in_context(unsure, long_message, "면세 한도 얼마예요?", SETTINGS)[2] is False
    assert unsure.asked == [long_message]
    first = ScriptedRetriever({})
    assert retrieve_in_context(first, "술은요?", None, SETTINGS)[2] is False


def test_answer_turn_routes_answer_suggest_and_fallback():
    retriever = ScriptedRetriever({"a": ("T-001", 0.9), "s": ("T-017", 0.3), "f": ("T-019", 0.1)})
    fallback_calls = []

    def fallback(text, suggestions):
        fallback_calls.append((text, suggestions))
        return "죄송해요"

    answered = answer_turn(retriever, "a", None, SETTINGS, fallback)
    assert (answered.route, answered.decision, answered.answer) == ("retrieval", "answer", "T-001 답변")
    suggested = answer_turn(retriever, "s", None, SETTINGS, fallback)
    assert suggested.decision == "suggest"
    assert suggested.answer == SUGGEST_PREFIX.format(question="T-017 질문") + "T-017 답변"
    fell_back = answer_turn(retriever, "f", None, SETTINGS, fallback)
    assert (fell_back.route, fell_back.decision, fell_back.source) == ("generation", "fallback", None)
    assert fallback_calls == [("f", ["T-019 질문"])]
