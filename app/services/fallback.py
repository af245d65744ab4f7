"""The generative fallback: a GPT-2 chit-chat model (seed 004, KoGPT2) that answers small talk when
retrieval has no FAQ answer, with every reply checked before anyone sees it.

The seed's model sometimes never stopped: it repeated `<pad>` or a word ("진짜 진짜 진짜 ...") because
padding was trained as a target and generation ran until an end token that might never come. Here:

- training puts an end-of-sequence token after every answer and never trains on padding (the
  trainer builds its examples with `ChatFormat`, the same code that builds prompts here);
- generation stops at end-of-sequence or after `max_new_tokens`, forbids the special tokens, and
  applies `repetition_penalty` and `no_repeat_ngram_size` (all saved in `generation_config.json`
  next to the weights, so the app decodes exactly the way training configured);
- `check_reply` inspects every reply (empty, special tokens, unknown-token marks, runaway repeats,
  length) and `reply()` reports a reply as unusable instead of passing it on. The caller then sends
  `safe_fallback_reply(...)`, which points to 관세청 고객지원센터 125 and the closest FAQs.

Decoding is greedy. Greedy is deterministic without touching torch's global random state (seeded
sampling would have to reseed a process-wide generator on every request, which races between the
threads of a worker), so the same message always gets the same reply, and the repetition controls
above remove greedy decoding's usual failure (loops).

Format (the seed's): `<usr> question <sent> label <sys> answer </s>`, label 0 everyday, 1 negative,
2 positive. The trainer also shows each pair without its label some of the time (`<usr> question
<sys> answer </s>`), so `reply(message)` needs no sentiment classifier: an unknown label is omitted.

The model is trained on chit-chat pairs only, never on customs text, so it has no customs facts to
state; the caller still marks its replies as generated (route "generation"), never as an answer.

No Flask here (trainers import this module); only the registry decorator is imported from the app.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from transformers import AutoTokenizer, GenerationConfig, GPT2LMHeadModel, PreTrainedTokenizerBase

from app.services.registry import register_loader

USER_TOKEN = "<usr>"
SYSTEM_TOKEN = "<sys>"
SENTIMENT_TOKEN = "<sent>"
CHAT_TOKENS = (USER_TOKEN, SYSTEM_TOKEN, SENTIMENT_TOKEN)
LABELS = (0, 1, 2)  # everyday, negative, positive (the seed's Chatbot_data labels)

# Questions longer than this many tokens are cut (the widget allows 1000 characters; small talk is short).
MAX_QUESTION_TOKENS = 48
PROMPT_OVERHEAD_TOKENS = 8  # <usr>, <sent>, the label (up to a few pieces), <sys>

# Decoding defaults written into generation_config.json by the trainer.
MAX_NEW_TOKENS = 32  # the longest training answer is 19 tokens of the small tokenizer
MIN_NEW_TOKENS = 2
REPETITION_PENALTY = 1.2
NO_REPEAT_NGRAM_SIZE = 3

# check_reply limits.
MIN_REPLY_WORD_CHARS = 2  # "네" alone says nothing useful as a fallback
MAX_REPLY_CHARS = 150
MAX_NGRAM_COUNT = 2  # a word or phrase (1-3 words) may occur twice ("너무 너무"), not three times
MAX_NGRAM_SIZE = 3
MAX_CHAR_RUN = 4  # "ㅋㅋㅋㅋ" is fine; five of the same character in a row is a loop
SPECIAL_TOKEN_PATTERN = re.compile(r"</?[A-Za-z][A-Za-z0-9_]*>|\[(?:UNK|PAD|CLS|SEP|MASK)\]")
UNKNOWN_MARK_PATTERN = re.compile("[\u2047\ufffd]")  # SentencePiece's unknown "⁇", broken-byte "�"
REPEATED_UNIT_PATTERN = re.compile(r"(\S{2,}?)\1{2,}")  # "진짜진짜진짜": a unit three times, no spaces
WORD_PATTERN = re.compile(r"\w+")
HANGUL_PATTERN = re.compile("[가-힣ㄱ-ㅎㅏ-ㅣ]")

CUSTOMS_HELPLINE = "관세청 고객지원센터(국번 없이 125)"
QUOTE_MAX_CHARS = 30


def check_reply(text: str) -> list[str]:
    """Reasons why `text` must not be sent to a user; an empty list means it is fine.

    Pure and cheap, so it runs on every generated reply. Each reason starts with a stable code
    (`empty`, `special_token`, `unknown_token`, `too_short`, `too_long`, `repetition`, `no_korean`)
    followed by the evidence, for logs and tests.
    """
    stripped = text.strip()
    if not stripped:
        return ["empty: no text"]
    problems: list[str] = []
    specials = sorted(set(SPECIAL_TOKEN_PATTERN.findall(stripped)))
    if specials:
        problems.append(f"special_token: {', '.join(specials)}")
    if UNKNOWN_MARK_PATTERN.search(stripped):
        problems.append("unknown_token: unknown-token mark in the text")
    words = [w.lower() for w in WORD_PATTERN.findall(SPECIAL_TOKEN_PATTERN.sub(" ", stripped))]
    if sum(len(w) for w in words) < MIN_REPLY_WORD_CHARS:
        problems.append(f"too_short: fewer than {MIN_REPLY_WORD_CHARS} letters")
    if len(stripped) > MAX_REPLY_CHARS:
        problems.append(f"too_long: {len(stripped)} characters > {MAX_REPLY_CHARS}")
    repetition = _repetition(stripped, words)
    if repetition:
        problems.append(f"repetition: {repetition}")
    if not HANGUL_PATTERN.search(stripped):
        problems.append("no_korean: no Korean text")
    return problems


def _repetition(text: str, words: list[str]) -> str | None:
    """The first runaway repeat found: a 1-3 word n-gram too often, a unit looping, or a character run."""
    for n in range(1, MAX_NGRAM_SIZE + 1):
        grams = Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
        if grams:
            gram, count = grams.most_common(1)[0]
            if count > MAX_NGRAM_COUNT:
                return f"'{' '.join(gram)}' x{count}"
    looping = REPEATED_UNIT_PATTERN.search(text)
    if looping:
        return f"'{looping.group(1)}' repeated without end"
    run = re.search(rf"(\S)\1{{{MAX_CHAR_RUN},}}", text)
    if run:
        return f"'{run.group(1)}' x{len(run.group(0))} in a row"
    return None


def safe_fallback_reply(message: str, suggestions: list[str]) -> str:
    """The polite reply sent instead of an unusable generated one (or when nothing fits at all).

    It quotes the start of the message (so the user sees what was not understood), sends customs
    questions to the official helpline, and lists the closest FAQ questions the widget can offer.
    """
    quoted = " ".join(message.split())
    if len(quoted) > QUOTE_MAX_CHARS:
        quoted = quoted[:QUOTE_MAX_CHARS].rstrip() + "…"
    opening = f"죄송합니다. '{quoted}'에 대해서는" if quoted else "죄송합니다. 말씀하신 내용에 대해서는"
    lines = [f"{opening} 알맞은 답변을 드리기 어렵습니다.",
             f"통관·관세 관련 문의는 {CUSTOMS_HELPLINE}로 연락해 주시면 정확히 안내받으실 수 있습니다."]
    if suggestions:
        lines.append("혹시 아래 질문을 찾으셨나요?")
        lines.extend(f"- {question}" for question in suggestions)
    return "\n".join(lines)


def add_chat_tokens(tokenizer: PreTrainedTokenizerBase) -> int:
    """Make `<usr>`, `<sys>`, `<sent>` (and a pad token) special tokens of `tokenizer`.

    Returns how many ids were added (the model's embeddings must then be resized). KoGPT2's
    vocabulary may already hold them; the small tokenizer is trained with them.
    """
    added = 0
    if tokenizer.pad_token is None:
        added += tokenizer.add_special_tokens({"pad_token": "<pad>"})
    missing = [t for t in CHAT_TOKENS if t not in tokenizer.additional_special_tokens]
    if missing:
        added += tokenizer.add_special_tokens(
            {"additional_special_tokens": [*tokenizer.additional_special_tokens, *missing]})
    return added


class ChatFormat:
    """The token layout of one exchange, shared by training (examples) and inference (prompts)."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_question_tokens: int = MAX_QUESTION_TOKENS):
        self.tokenizer = tokenizer
        self.max_question_tokens = max_question_tokens
        self.special_ids = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
        self.user_id, self.system_id, self.sentiment_id = tokenizer.convert_tokens_to_ids(list(CHAT_TOKENS))
        if tokenizer.unk_token_id in (self.user_id, self.system_id, self.sentiment_id):
            raise ValueError("tokenizer lacks the chat tokens; call add_chat_tokens first")
        self.label_ids = {label: self._ids(str(label)) for label in LABELS}
        if any(tokenizer.unk_token_id in ids for ids in self.label_ids.values()):
            raise ValueError(f"tokenizer cannot spell the labels {LABELS}: train it on text containing them")
        self.eos_id = tokenizer.eos_token_id

    def _ids(self, text: str) -> list[int]:
        """Token ids of plain text; a `<sys>` or `<pad>` typed by a user is dropped, never obeyed."""
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return [i for i in ids if i not in self.special_ids]

    def prompt(self, question: str, label: int | None) -> list[int]:
        """`<usr> question [<sent> label] <sys>`: what the model continues with an answer."""
        ids = [self.user_id, *self._ids(question)[: self.max_question_tokens]]
        if label is not None:
            if label not in LABELS:
                raise ValueError(f"label must be one of {LABELS}, got {label}")
            ids += [self.sentiment_id, *self.label_ids[label]]
        return ids + [self.system_id]

    def example(self, question: str, label: int | None, answer: str) -> tuple[list[int], list[int]]:
        """(input_ids, labels) of one training pair: loss only on the answer and its end token."""
        prompt = self.prompt(question, label)
        answer_ids = [*self._ids(answer), self.eos_id]
        return prompt + answer_ids, [-100] * len(prompt) + answer_ids


def default_generation_config(tokenizer: PreTrainedTokenizerBase) -> GenerationConfig:
    """Greedy decoding that ends: stop at `</s>`, at most MAX_NEW_TOKENS, no special tokens, no loops."""
    banned = sorted({tokenizer.convert_tokens_to_ids(t) for t in tokenizer.all_special_tokens}
                    - {tokenizer.eos_token_id})
    return GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=MAX_NEW_TOKENS,
        min_new_tokens=MIN_NEW_TOKENS,
        repetition_penalty=REPETITION_PENALTY,
        no_repeat_ngram_size=NO_REPEAT_NGRAM_SIZE,
        suppress_tokens=banned,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


@dataclass
class GeneratedReply:
    """A generated reply and its check. When `usable` is False, `text` is empty and `problems` say why."""

    text: str
    usable: bool
    problems: list[str] = field(default_factory=list)


class ChitChatGenerator:
    """A GPT-2 chit-chat model and its tokenizer, loaded from the directory its trainer wrote."""

    def __init__(self, model: GPT2LMHeadModel, tokenizer: PreTrainedTokenizerBase):
        self.model = model.eval()
        self.tokenizer = tokenizer
        # Prompt and reply must fit the model's positions: long messages lose their tail, never crash.
        room = model.config.n_positions - (model.generation_config.max_new_tokens or 0) - PROMPT_OVERHEAD_TOKENS
        self.format = ChatFormat(tokenizer, max(1, min(MAX_QUESTION_TOKENS, room)))

    @classmethod
    def from_pretrained(cls, path: str | Path) -> "ChitChatGenerator":
        return cls(GPT2LMHeadModel.from_pretrained(str(path)), AutoTokenizer.from_pretrained(str(path)))

    def save_pretrained(self, path: str | Path) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))

    def generate(self, message: str, label: int | None = None) -> tuple[str, bool]:
        """(decoded continuation, whether it ended with `</s>`), unchecked; `reply` is the safe call."""
        return self.generate_many([message], label)[0]

    @torch.no_grad()
    def generate_many(self, messages: Sequence[str], label: int | None = None) -> list[tuple[str, bool]]:
        """`generate` for several messages in one batch (left-padded, so every prompt ends at `<sys>`)."""
        prompts = [self.format.prompt(message, label) for message in messages]
        width = max(map(len, prompts))
        pad_id = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=self.model.device)
        attention_mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                                      device=self.model.device)
        output = self.model.generate(input_ids, attention_mask=attention_mask,
                                     generation_config=self.model.generation_config)
        return [self._decode(row[width:].tolist()) for row in output]

    def _decode(self, new_ids: list[int]) -> tuple[str, bool]:
        """Text up to the first `</s>` (batch rows are padded after it), whitespace normalised."""
        ended = self.format.eos_id in new_ids
        if ended:
            new_ids = new_ids[: new_ids.index(self.format.eos_id)]
        text = self.tokenizer.decode(new_ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
        return " ".join(text.split()), ended

    def reply(self, message: str, label: int | None = None) -> GeneratedReply:
        """Generate, clean and check a reply to `message` (label None: sentiment unknown, omitted)."""
        return self.checked(*self.generate(message, label))

    def checked(self, text: str, ended: bool) -> GeneratedReply:
        """The verdict on one output of `generate`: a reply that did not end by itself is a runaway."""
        problems = check_reply(text)
        if not ended:
            limit = self.model.generation_config.max_new_tokens
            problems.append(f"truncated: no end of sequence within {limit} tokens")
        if problems:
            return GeneratedReply(text="", usable=False, problems=problems)
        return GeneratedReply(text=text, usable=True, problems=[])


@register_loader("fallback")
def load_fallback(config: Mapping[str, Any]) -> ChitChatGenerator:
    """The chit-chat generator trained by `flask train kogpt2` (config KOGPT2_MODEL)."""
    return ChitChatGenerator.from_pretrained(config["KOGPT2_MODEL"])
