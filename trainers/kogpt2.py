"""Trainer and evaluation of the chit-chat fallback (seed 004: KoGPT2 fine-tuned on Q/A pairs).

One code path for every profile: the task starts from a base-model directory or hub name
(`skt/kogpt2-base-v2` where its weights are present). The `small` profile only creates that starting
checkpoint first (`build_small_base`): a GPT-2 built small from config with a Unigram tokenizer
trained on the training split's chit-chat text, so the model never sees customs text at all.

Examples come from `ChatFormat` in `app/services/fallback.py`, the code that builds the app's
prompts, so training and serving cannot drift apart. The loss covers only the answer and its
end-of-sequence token (the fix for the seed's endless `<pad>`: padding is never a target). With
probability `label_dropout` a pair is shown without its sentiment label, so the app can reply to a
message whose label nobody knows. The epoch kept is the one whose greedy replies to the held-out
questions score best (`val_reply_f1`, see `ChitChatTask`).
"""
from __future__ import annotations

import math
import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset
from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

from app.services.fallback import (
    CHAT_TOKENS,
    LABELS,
    WORD_PATTERN,
    ChatFormat,
    ChitChatGenerator,
    add_chat_tokens,
    default_generation_config,
)
from trainers.data import read_jsonl
from trainers.tokenizer import train_tokenizer

# KoGPT2's own special-token layout (bos = eos = `</s>`), so both profiles decode the same way.
SPECIAL_TOKENS = {"bos_token": "</s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
SPLIT_SEED = 4
VAL_FRACTION = 0.1
LABEL_DROPOUT = 0.25
EVAL_BATCH_SIZE = 32


@dataclass(frozen=True)
class SmallGPT2Spec:
    """Size of the GPT-2 the `small` profile builds: about 2 M parameters.

    Measured on the 80 held-out pairs (best validation loss per answer token): 2 layers x 256 4.14,
    4 x 256 4.22, 3 x 256 with dropout 0.2 4.15, 2 x 384 4.30, 4 x 128 4.32. With 720 training pairs the
    data, not the size, is the limit, so the cheapest of the best is the default.
    """

    vocab_size: int = 2000  # the chit-chat text supports about 1850 Unigram pieces
    n_positions: int = 128
    n_embd: int = 256
    n_layer: int = 2
    n_head: int = 4
    dropout: float = 0.1


@dataclass(frozen=True)
class ChatPair:
    pair_id: str
    question: str
    answer: str
    label: int


def read_chitchat(path: Path) -> list[ChatPair]:
    """`chitchat.jsonl`: one {id, q, a, label} object per line."""
    return [ChatPair(o["id"], o["q"], o["a"], int(o["label"])) for o in read_jsonl(path)]


def split_chitchat(pairs: Sequence[ChatPair], val_fraction: float = VAL_FRACTION,
                   seed: int = SPLIT_SEED) -> tuple[list[ChatPair], list[ChatPair]]:
    """(train, validation): a seeded shuffle first, because the file is grouped by label."""
    shuffled = sorted(pairs, key=lambda p: p.pair_id)
    random.Random(seed).shuffle(shuffled)
    n_val = max(1, round(len(shuffled) * val_fraction))
    return shuffled[n_val:], shuffled[:n_val]


def build_small_base(path: Path, texts: Iterable[str], spec: SmallGPT2Spec = SmallGPT2Spec()) -> Path:
    """Create the small profile's starting checkpoint (random weights, tokenizer trained on `texts`).

    The label digits join the tokenizer's text so that `<sent> 2` never becomes `<sent> <unk>`.
    """
    label_text = " ".join(map(str, LABELS))
    tokenizer = train_tokenizer([*texts, label_text], SPECIAL_TOKENS, spec.vocab_size,
                                extra_special_tokens=CHAT_TOKENS)
    config = GPT2Config(
        vocab_size=len(tokenizer), n_positions=spec.n_positions, n_embd=spec.n_embd, n_layer=spec.n_layer,
        n_head=spec.n_head, resid_pdrop=spec.dropout, embd_pdrop=spec.dropout, attn_pdrop=spec.dropout,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = GPT2LMHeadModel(config)
    model.generation_config = default_generation_config(tokenizer)
    ChitChatGenerator(model, tokenizer).save_pretrained(path)
    return path


def load_base(base_model: str | Path) -> ChitChatGenerator:
    """A base checkpoint made ready for the chat format: chat tokens added, decoding configured."""
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    model = GPT2LMHeadModel.from_pretrained(str(base_model))
    if add_chat_tokens(tokenizer):
        model.resize_token_embeddings(len(tokenizer))
    model.config.pad_token_id = tokenizer.pad_token_id
    model.generation_config = default_generation_config(tokenizer)
    return ChitChatGenerator(model, tokenizer)


class ChatExamples(Dataset):
    """Training pairs as token ids; each access drops the label with probability `label_dropout`."""

    def __init__(self, pairs: Sequence[ChatPair], chat_format: ChatFormat, max_length: int, label_dropout: float):
        self.pairs = list(pairs)
        self.format = chat_format
        self.max_length = max_length
        self.label_dropout = label_dropout

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[list[int], list[int]]:
        pair = self.pairs[index]
        label = None if torch.rand(()).item() < self.label_dropout else pair.label
        return encode(self.format, pair, label, self.max_length)


def encode(chat_format: ChatFormat, pair: ChatPair, label: int | None, max_length: int) -> tuple[list[int], list[int]]:
    input_ids, labels = chat_format.example(pair.question, label, pair.answer)
    return input_ids[:max_length], labels[:max_length]


def collate(items: list[tuple[list[int], list[int]]], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad a batch; padded positions are masked out and carry no loss (-100)."""
    width = max(len(ids) for ids, _ in items)
    input_ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), -100, dtype=torch.long)
    attention_mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, (ids, targets) in enumerate(items):
        input_ids[row, : len(ids)] = torch.tensor(ids)
        labels[row, : len(targets)] = torch.tensor(targets)
        attention_mask[row, : len(ids)] = 1
    return {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask}


@torch.no_grad()
def answer_loss(generator: ChitChatGenerator, pairs: Sequence[ChatPair], with_label: bool) -> float:
    """Mean cross-entropy per answer token (end token included) over `pairs`."""
    model, pad_id = generator.model, generator.tokenizer.pad_token_id
    max_length = model.config.n_positions
    was_training = model.training
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(pairs), EVAL_BATCH_SIZE):
        chunk = pairs[start:start + EVAL_BATCH_SIZE]
        batch = collate([encode(generator.format, p, p.label if with_label else None, max_length) for p in chunk],
                        pad_id)
        batch = {k: v.to(model.device) for k, v in batch.items()}
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        targets = batch["labels"][:, 1:]
        losses = nn.functional.cross_entropy(logits[:, :-1].transpose(1, 2), targets, ignore_index=-100,
                                             reduction="sum")
        total += losses.item()
        count += (targets != -100).sum().item()
    model.train(was_training)
    return total / max(1, count)


def reply_f1(reply: str, reference: str) -> float:
    """F1 of the character bigrams (spaces removed) shared by a reply and the reference answer.

    A crude but cheap relevance score for Korean replies (a word's stem and particle share bigrams
    even when the word form differs); 0 for an empty reply.
    """
    ours, theirs = _char_bigrams(reply), _char_bigrams(reference)
    overlap = sum((ours & theirs).values())
    return 2 * overlap / (sum(ours.values()) + sum(theirs.values())) if overlap else 0.0


def _char_bigrams(text: str) -> Counter:
    compact = "".join(text.split())
    return Counter(compact[i:i + 2] for i in range(len(compact) - 1))


def reply_scores(generator: ChitChatGenerator, pairs: Sequence[ChatPair]) -> dict[str, float]:
    """Greedy replies to held-out questions, label omitted as in the app: share usable, mean reply F1
    (an unusable reply scores 0)."""
    usable, f1 = 0, 0.0
    for start in range(0, len(pairs), EVAL_BATCH_SIZE):
        chunk = pairs[start:start + EVAL_BATCH_SIZE]
        for pair, output in zip(chunk, generator.generate_many([p.question for p in chunk])):
            verdict = generator.checked(*output)
            usable += verdict.usable
            f1 += reply_f1(verdict.text, pair.answer)
    return {"val_usable_share": usable / len(pairs), "val_reply_f1": f1 / len(pairs)}


class ChitChatTask:
    """The loop's task: causal-LM loss on answers; the replies' F1 on held-out pairs selects the model.

    Not the validation loss: measured on the 80 held-out pairs, the loss is lowest after about 6
    epochs, when greedy replies are still generic ("어때요?", reply F1 0.06, distinct-2 0.39); by
    epoch 12-16 the loss has risen but the replies answer the message ("고마워" -> "천만에요, 도움이
    되어 기뻐요.", F1 0.09-0.10, distinct-2 0.85-0.91). What the app serves is the greedy reply.
    The F1 moves by about 0.01 from epoch to epoch: keep the patience at 4 or more.
    """

    selection_metric = "val_reply_f1"
    higher_is_better = True

    def __init__(self, base_model: str | Path, train_pairs: Sequence[ChatPair], val_pairs: Sequence[ChatPair],
                 label_dropout: float = LABEL_DROPOUT):
        self.generator = load_base(base_model)
        self.model = self.generator.model
        self.train_pairs, self.val_pairs = list(train_pairs), list(val_pairs)
        self._dataset = ChatExamples(self.train_pairs, self.generator.format, self.model.config.n_positions,
                                     label_dropout)

    def train_dataset(self) -> Dataset:
        return self._dataset

    def collate(self, items: list[tuple[list[int], list[int]]]) -> dict[str, torch.Tensor]:
        return collate(items, self.generator.tokenizer.pad_token_id)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**batch).loss

    def evaluate(self) -> dict[str, float]:
        val_loss = answer_loss(self.generator, self.val_pairs, with_label=True)
        return {"val_loss": val_loss, "val_perplexity": math.exp(val_loss),
                "val_loss_no_label": answer_loss(self.generator, self.val_pairs, with_label=False),
                **reply_scores(self.generator, self.val_pairs)}

    def save(self, path: Path) -> None:
        self.generator.save_pretrained(path)


def distinct_n(replies: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams of words over all replies (Li et al. 2016): low = generic, looping."""
    grams = [tuple(words[i:i + n]) for words in map(WORD_PATTERN.findall, replies)
             for i in range(len(words) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


def repeat_share(reply: str) -> float:
    """Share of a reply's words that repeat an earlier word of the same reply (0: no repeats)."""
    words = WORD_PATTERN.findall(reply)
    return 1 - len(set(words)) / len(words) if words else 0.0


def evaluate_generator(generator: ChitChatGenerator, val_pairs: Sequence[ChatPair],
                       train_pairs: Sequence[ChatPair] = ()) -> tuple[dict[str, float], list[dict]]:
    """Metrics on held-out pairs, replies generated as the app does (label omitted), and the samples.

    `copied_training_answer` is the share of replies that repeat a training answer verbatim: with
    720 pairs the small model often retrieves rather than composes, which this makes visible.
    """
    val_loss = answer_loss(generator, val_pairs, with_label=True)
    train_answers = {p.answer for p in train_pairs}
    samples, latencies = [], []
    for pair in val_pairs:
        start = time.perf_counter()
        text, ended = generator.generate(pair.question)
        latencies.append(time.perf_counter() - start)
        verdict = generator.checked(text, ended)
        samples.append({"id": pair.pair_id, "question": pair.question, "reference": pair.answer,
                        "generated": text, "usable": verdict.usable, "problems": verdict.problems,
                        "reply_f1": reply_f1(verdict.text, pair.answer)})
    texts = [s["generated"] for s in samples]
    latencies.sort()
    metrics = {
        "pairs": len(val_pairs),
        "val_loss": val_loss,
        "val_perplexity": math.exp(val_loss),
        "val_loss_no_label": answer_loss(generator, val_pairs, with_label=False),
        "usable_share": sum(s["usable"] for s in samples) / len(samples),
        "reply_f1": sum(s["reply_f1"] for s in samples) / len(samples),
        "avg_reply_chars": sum(map(len, texts)) / len(texts),
        "distinct_1": distinct_n(texts, 1),
        "distinct_2": distinct_n(texts, 2),
        "repeat_rate": sum(map(repeat_share, texts)) / len(texts),
        "copied_training_answer": sum(t in train_answers for t in texts) / len(texts),
        "latency_ms_mean": 1000 * sum(latencies) / len(latencies),
        "latency_ms_p95": 1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))],
    }
    return metrics, samples


def problem_counts(samples: Iterable[dict]) -> Counter:
    """How often each check failed (by the reason's code), for the eval report."""
    return Counter(problem.split(":", 1)[0] for s in samples for problem in s["problems"])
