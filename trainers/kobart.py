"""Train the keyword extractor (KoBART, seed 002) on (question -> keywords) pairs.

One code path for both profiles: `train_extractor` fine-tunes whatever BART checkpoint it is given.
With real weights that is gogamza/kobart-base-v1; the `small` profile first makes its own starting
checkpoint with `build_small_base`: a Unigram tokenizer trained on the FAQ text, a small BART built
from config, and a short denoising pre-training on the same text (BART's text infilling: spans
replaced by one `<mask>`, the model rewrites the original), so that fine-tuning starts from a model
that already copies Korean words from its input.

Only training records are used: the held-out paraphrases (`trainers.data.heldout_split`) are the
validation set, and their text is kept out of pre-training and the tokenizer as well.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
import torch
from torch import nn
from transformers import BartConfig, BartForConditionalGeneration, PreTrainedTokenizerBase

from kg.extractor import (ExtractorSettings, KeywordExtractor, encode_inputs, encode_targets, pad_rows,
                          save_settings, score_keywords, segment)
from kg.normalize import kiwi
from trainers.data import FaqRecord, Query
from trainers.loop import TrainConfig, train
from trainers.tokenizer import save_tokenizer, train_tokenizer

SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>",
                  "mask_token": "<mask>"}


@dataclass(frozen=True)
class SmallBartSpec:
    """Size of the small-profile BART (1.5 M parameters), for a default run of about two minutes on
    two CPU cores: a 256-wide, 3-layer BART (6.6 M) costs 3.6x as much per step."""

    vocab_size: int = 4000
    d_model: int = 128
    layers: int = 2
    heads: int = 4
    ffn_dim: int = 512
    max_positions: int = 256
    dropout: float = 0.1


@dataclass(frozen=True)
class DenoisingSpec:
    """BART text infilling: mask about `mask_ratio` of the tokens in spans of Poisson(`span_mean`) length."""

    mask_ratio: float = 0.3
    span_mean: float = 3.0
    max_tokens: int = 96
    validation_fraction: float = 0.05


# --- data ----------------------------------------------------------------------------------------
def keyword_pairs(records: Iterable[FaqRecord]) -> list[tuple[str, list[str]]]:
    """Every question and paraphrase with its keyword list (records without labels contribute nothing)."""
    pairs: list[tuple[str, list[str]]] = []
    for r in records:
        if r.keywords:
            pairs.append((r.question, list(r.keywords)))
        pairs += [(p.text, list(p.keywords)) for p in r.paraphrases if p.keywords]
    return pairs


def corpus_sentences(records: Iterable[FaqRecord]) -> list[str]:
    """The Korean text the small base learns from: questions, paraphrases, answer sentences."""
    texts: list[str] = []
    for r in records:
        texts.append(r.question)
        texts += [p.text for p in r.paraphrases]
        texts += [s.text for s in kiwi().split_into_sents(r.answer)]
    return [t for t in texts if t.strip()]


# --- the small base ------------------------------------------------------------------------------
def small_bart(tokenizer: PreTrainedTokenizerBase, spec: SmallBartSpec) -> BartForConditionalGeneration:
    config = BartConfig(
        vocab_size=len(tokenizer), d_model=spec.d_model,
        encoder_layers=spec.layers, decoder_layers=spec.layers,
        encoder_attention_heads=spec.heads, decoder_attention_heads=spec.heads,
        encoder_ffn_dim=spec.ffn_dim, decoder_ffn_dim=spec.ffn_dim,
        max_position_embeddings=spec.max_positions, dropout=spec.dropout,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.eos_token_id,
        forced_bos_token_id=None, forced_eos_token_id=None,
    )
    model = BartForConditionalGeneration(config)
    copy_friendly_init(model)
    return model


def copy_friendly_init(model: BartForConditionalGeneration) -> None:
    """Start the decoder's cross-attention value and output projections as the identity.

    Attending to an input token then puts that token's representation into the decoder's residual
    stream, and the output layer (tied to the input embeddings) already favours writing it back:
    the model starts out able to copy and only has to learn what to copy. From random projections
    a small BART needs thousands of steps before copying sets in (measured on a toy task, copy every
    third input token: loss 0.2 after 300 steps with this start, still 5.5 after 400 without), and in
    the meantime it memorises keyword lists.
    """
    with torch.no_grad():
        for layer in model.model.decoder.layers:
            for projection in (layer.encoder_attn.v_proj, layer.encoder_attn.out_proj):
                projection.weight.copy_(torch.eye(projection.weight.shape[0]))
                projection.bias.zero_()


def mask_spans(ids: list[int], mask_id: int, spec: DenoisingSpec, rng: random.Random,
               np_rng: np.random.Generator) -> list[int]:
    """Mask mask_ratio of `ids` in spans of Poisson(span_mean) length; each run of masked tokens
    becomes one mask token, so the model must also infer how much is missing (BART text infilling)."""
    budget = round(len(ids) * spec.mask_ratio)
    masked = [False] * len(ids)
    while budget > 0:
        start = rng.randrange(len(ids))
        for i in range(start, min(len(ids), start + max(1, int(np_rng.poisson(spec.span_mean))))):
            if budget > 0 and not masked[i]:
                masked[i] = True
                budget -= 1
    out: list[int] = []
    for token, is_masked in zip(ids, masked):
        if not is_masked:
            out.append(token)
        elif not out or out[-1] != mask_id:
            out.append(mask_id)
    return out


class DenoisingTask:
    """Pre-train a BART to restore text whose spans were masked; selects on validation loss."""

    selection_metric = "val_loss"
    higher_is_better = False

    def __init__(self, model: BartForConditionalGeneration, tokenizer: PreTrainedTokenizerBase,
                 texts: Sequence[str], spec: DenoisingSpec = DenoisingSpec(), seed: int = 0):
        self.model, self.tokenizer, self.spec = model, tokenizer, spec
        texts = list(texts)
        random.Random(seed).shuffle(texts)
        n_val = max(1, int(len(texts) * spec.validation_fraction))
        self.val_texts, self.train_texts = texts[:n_val], texts[n_val:]
        self.rng, self.np_rng = random.Random(seed), np.random.default_rng(seed)
        self._val_batch = self._batch(self.val_texts, random.Random(seed), np.random.default_rng(seed))

    def train_dataset(self) -> list[str]:
        return self.train_texts

    def _batch(self, texts: Sequence[str], rng: random.Random, np_rng: np.random.Generator) -> dict[str, torch.Tensor]:
        tok = self.tokenizer
        max_body = self.spec.max_tokens - 2
        bodies = [ids[:max_body] for ids in tok(list(texts), add_special_tokens=False)["input_ids"]]
        noisy = [[tok.bos_token_id, *mask_spans(b, tok.mask_token_id, self.spec, rng, np_rng), tok.eos_token_id]
                 for b in bodies]
        batch = pad_rows(noisy, tok.pad_token_id)
        batch["labels"] = pad_rows([[*b, tok.eos_token_id] for b in bodies], -100)["input_ids"]
        return batch

    def collate(self, texts: list[str]) -> dict[str, torch.Tensor]:
        return self._batch(texts, self.rng, self.np_rng)

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**batch).loss

    def evaluate(self) -> dict[str, float]:
        batch = {k: v.to(self.model.device) for k, v in self._val_batch.items()}
        return {"val_loss": float(self.model(**batch).loss)}

    def save(self, path: Path) -> None:
        self.model.save_pretrained(str(path))
        self.tokenizer.save_pretrained(str(path))


def build_small_base(texts: Sequence[str], output_dir: Path, cfg: TrainConfig,
                     spec: SmallBartSpec = SmallBartSpec(), denoising: DenoisingSpec = DenoisingSpec(),
                     presegment: bool = True, log: Callable[[str], None] = print) -> Path:
    """Tokenizer + small BART + denoising pre-training on `texts`; the checkpoint lands in cfg.output_dir.

    The tokenizer learns from the text as written (its pieces are then whole words and morphemes:
    trained on morpheme-split text, a Unigram model keeps mostly single characters); with
    `presegment` the model is pre-trained on morpheme-split text, the form the extractor will read.
    """
    tokenizer = train_tokenizer(texts, SPECIAL_TOKENS, vocab_size=spec.vocab_size)
    log(f"tokenizer: {len(tokenizer)} pieces from {len(texts)} texts")
    model = small_bart(tokenizer, spec)
    log(f"small BART: {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters")
    cfg.task.update({"kind": "bart-denoising", "model": asdict(spec), "denoising": asdict(denoising),
                     "presegment": presegment})
    corpus = [segment(t) for t in texts] if presegment else list(texts)
    train(DenoisingTask(model, tokenizer, corpus, denoising, seed=cfg.seed), cfg, log=log)
    # The loop saved the model; keep the tokenizer with it, and the input format fine-tuning must keep.
    save_tokenizer(tokenizer, output_dir)
    save_settings(ExtractorSettings(presegment=presegment), output_dir)
    return output_dir


# --- fine-tuning ---------------------------------------------------------------------------------
class KeywordTask:
    """Fine-tune BART on (text -> `kw1, kw2, ...`); selects on keyword F1 of held-out paraphrases."""

    selection_metric = "keyword_f1"
    higher_is_better = True

    def __init__(self, extractor: KeywordExtractor, pairs: Sequence[tuple[str, list[str]]],
                 validation: Sequence[Query], eval_beams: int = 1):
        self.extractor = extractor
        self.model = extractor.model
        self.examples = [self._prepare(text, keywords) for text, keywords in pairs]
        self.validation = [q for q in validation if q.keywords]
        self._val_examples = [self._prepare(q.text, q.keywords) for q in self.validation]
        # Greedy decoding per epoch is several times cheaper than beams and ranks checkpoints alike.
        self.eval_beams = eval_beams

    def _prepare(self, text: str, keywords: Sequence[str]) -> tuple[str, str]:
        """(model input, target) strings, computed once: segmenting with kiwipiepy is not free."""
        return self.extractor.source_text(text), self.extractor.target_text(keywords)

    def train_dataset(self) -> list[tuple[str, str]]:
        return self.examples

    def collate(self, items: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        tok, s = self.extractor.tokenizer, self.extractor.settings
        batch = encode_inputs(tok, [source for source, _ in items], s.max_input_tokens)
        batch["labels"] = encode_targets(tok, [target for _, target in items], s.max_new_tokens)
        return batch

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**batch).loss

    def evaluate(self) -> dict[str, float]:
        val_batch = {k: v.to(self.model.device) for k, v in self.collate(self._val_examples).items()}
        predicted = extract_all(self.extractor, [q.text for q in self.validation], num_beams=self.eval_beams)
        scores = score_keywords(predicted, [q.keywords for q in self.validation])
        return {"val_loss": float(self.model(**val_batch).loss), **asdict(scores)}

    def save(self, path: Path) -> None:
        self.extractor.save_pretrained(path)


def extract_all(extractor: KeywordExtractor, texts: Sequence[str], batch_size: int = 64,
                num_beams: int | None = None) -> list[list[str]]:
    out: list[list[str]] = []
    for start in range(0, len(texts), batch_size):
        out += extractor.extract_batch(texts[start:start + batch_size], num_beams=num_beams)
    return out


def train_extractor(base_model: str | Path, pairs: Sequence[tuple[str, list[str]]], validation: Sequence[Query],
                    cfg: TrainConfig, log: Callable[[str], None] = print) -> list[dict[str, float]]:
    """Fine-tune the BART at `base_model` (a name or a path) into a KeywordExtractor at cfg.output_dir.

    The extractor keeps the base's settings (`extractor.json`; a small base reads morpheme-split text).
    """
    extractor = KeywordExtractor.from_pretrained(base_model)
    cfg.task.update({"kind": "keyword-extraction", "base_model": str(base_model), "pairs": len(pairs),
                     "validation": len(validation), "extractor": asdict(extractor.settings)})
    return train(KeywordTask(extractor, pairs, validation), cfg, log=log)
