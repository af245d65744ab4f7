"""The reply checker and the polite replacement reply: pure functions, no model."""
import pytest

from app.services.fallback import MAX_REPLY_CHARS, check_reply, safe_fallback_reply


def codes(text: str) -> set[str]:
    return {problem.split(":", 1)[0] for problem in check_reply(text)}


@pytest.mark.parametrize("reply", [
    "공항에 오셨군요, 즐거운 여행 되세요!",
    "많이 짜증나셨군요, 무슨 일이에요?",
    "너무 너무 좋아요!",  # a word twice is emphasis, not a loop
    "ㅋㅋㅋ 웃으시니 저도 기분 좋아요.",
    "네, 저는 사람이 아닌 대화형 챗봇이에요.",
    "커피 한 잔 어때요? 저는 녹차도 좋아요.",
])
def test_normal_replies_pass(reply):
    assert check_reply(reply) == []


@pytest.mark.parametrize("reply", ["", "   ", "\n\t"])
def test_empty_replies_fail(reply):
    assert codes(reply) == {"empty"}


@pytest.mark.parametrize("token", ["<pad>", "<unk>", "<usr>", "<sys>", "<sent>", "</s>", "<s>", "<unused0>", "[UNK]"])
def test_special_tokens_fail(token):
    problems = check_reply(f"좋은 하루 {token} 보내세요")
    assert any(p.startswith("special_token") and token in p for p in problems)


def test_reply_of_only_padding_fails():
    assert "special_token" in codes("<pad><pad><pad><pad>")
    assert "too_short" in codes("<pad><pad><pad><pad>")


@pytest.mark.parametrize("mark", ["\u2047", "\ufffd"])
def test_unknown_token_marks_fail(mark):
    assert "unknown_token" in codes(f"좋은 {mark} 하루 보내세요")


@pytest.mark.parametrize("reply", [
    "진짜 진짜 진짜 진짜 진짜 진짜",
    "진짜, 진짜, 진짜 좋아요",
    "좋은 하루 좋은 하루 좋은 하루 되세요",
    "진짜진짜진짜진짜",
    "ㅋㅋㅋㅋㅋㅋㅋㅋㅋ",
    "네!!!!!!!",
])
def test_runaway_repeats_fail(reply):
    assert "repetition" in codes(reply)


def test_repetition_reason_names_the_repeated_word():
    (problem,) = [p for p in check_reply("진짜 진짜 진짜 진짜 좋아") if p.startswith("repetition")]
    assert "'진짜' x4" in problem


def test_length_limits():
    assert "too_short" in codes("네")
    assert "too_short" in codes("!?")
    assert "too_long" in codes("가나다라 마바사 " * (MAX_REPLY_CHARS // 8 + 1))


def test_reply_without_korean_fails():
    assert "no_korean" in codes("hello there")


def test_safe_reply_points_to_helpline_and_lists_suggestions():
    text = safe_fallback_reply("면세 한도가 궁금해요", ["여행자 면세 한도는 얼마인가요?", "술은 몇 병까지 면세인가요?"])
    assert "관세청 고객지원센터" in text and "125" in text
    assert "- 여행자 면세 한도는 얼마인가요?" in text and "- 술은 몇 병까지 면세인가요?" in text
    assert "면세 한도가 궁금해요" in text


def test_safe_reply_without_suggestions_or_message():
    text = safe_fallback_reply("   ", [])
    assert "125" in text and "혹시" not in text and "''" not in text


def test_safe_reply_shortens_long_messages():
    text = safe_fallback_reply("가" * 500, [])
    assert "가" * 31 not in text and "…" in text
