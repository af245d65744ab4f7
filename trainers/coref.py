"""Trainers of the dialogue-coreference resolver (seed 001), both architectures.

- `train_feature_scorer`: a scikit-learn logistic regression on (option features, is-the-answer) rows;
  the app scores the four options with its weights and takes a softmax (`FeatureScorer`). Seconds.
- `CorefLMTask`: a causal LM fine-tuned on the seed's prompt format on the shared loop
  (`trainers/loop.py`): loss on the answer continuation only (`C) B가 올린 사진 속 크로스백</s>`), the
  held-out accuracy of option scoring selects the model. The `small` profile starts it from a Llama
  built small from config (`build_small_base`), tokenizer trained on the training dialogues.

Validation is always on authored dialogues held out by `split_items` (never synthetic ones), so the
effect of synthetic data (`trainers/coref_synthetic.py`) is measured on real items.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from app.services.coref import (
    OPTION_KEYS,
    CausalLMScorer,
    CorefItem,
    CorefResolver,
    FeatureScorer,
    TextEmbedder,
    accuracy,
    encode_choice,
    feature_rows,
    format_answer,
    format_prompt,
    pad_batch,
)
from trainers.coref_synthetic import generate
from trainers.data import HELDOUT_SEED
from trainers.tokenizer import train_tokenizer

HELDOUT_ITEMS = 40  # as in FINDINGS.md: 40 of the 240 authored dialogues
SYNTHETIC_SEED = 1
# Inverse L2 strength of the logistic regression; 6-fold CV on the training split was flat in 0.3-3.
DEFAULT_C = 1.0
MAX_ITER = 5000
SPECIAL_TOKENS = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}


def split_items(items: Sequence[CorefItem], n_heldout: int = HELDOUT_ITEMS,
                seed: int = HELDOUT_SEED) -> tuple[list[CorefItem], list[CorefItem]]:
    """(train, held-out): `n_heldout` dialogues chosen reproducibly by id; the rest train."""
    ordered = sorted(items, key=lambda it: it.item_id)
    held_ids = {it.item_id for it in random.Random(seed).sample(ordered, min(n_heldout, len(ordered)))}
    return ([it for it in ordered if it.item_id not in held_ids], [it for it in ordered if it.item_id in held_ids])


def synthetic_items(n: int, seed: int = SYNTHETIC_SEED) -> list[CorefItem]:
    return [CorefItem.from_json(obj) for obj in generate(n, seed)]


# --- the feature path ----------------------------------------------------------------------------


def train_feature_scorer(items: Sequence[CorefItem], embedder: TextEmbedder | None = None,
                         embedder_path: str | None = None, c: float = DEFAULT_C) -> FeatureScorer:
    """Fit the logistic regression on one row per option (label: is it the answer).

    The intercept is dropped from the saved scorer: a constant added to all four options does not
    change their softmax. Features are standardised on the training rows.
    """
    from sklearn.linear_model import LogisticRegression

    rows = feature_rows(items, embedder)
    names = sorted(rows[0][0])
    x = np.array([[row[name] for name in names] for item_rows in rows for row in item_rows])
    y = np.array([float(key == item.answer) for item in items for key in OPTION_KEYS])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c, max_iter=MAX_ITER).fit((x - mean) / scale, y)
    return FeatureScorer(names, mean.tolist(), scale.tolist(), model.coef_[0].tolist(), embedder, embedder_path)


def save_feature_run(resolver: CorefResolver, output_dir: Path, run_config: dict, metrics: dict) -> None:
    """The model plus the run's train_config.json and metrics.json, like the loop writes for the LM path."""
    resolver.save_pretrained(output_dir)
    (output_dir / "train_config.json").write_text(json.dumps(run_config, ensure_ascii=False, indent=2), encoding="utf-8")
    (output_dir / "metrics.json").write_text(json.dumps(metrics, ensure_ascii=False, indent=2), encoding="utf-8")


# --- the causal-LM path --------------------------------------------------------------------------


@dataclass(frozen=True)
class SmallLlamaSpec:
    """The Llama the `small` profile builds (about 1.6 M parameters: an epoch of ~1000 dialogues takes
    a few minutes on 2 cores). Prompts are 250-400 tokens with a tokenizer of this size."""

    vocab_size: int = 4000
    hidden_size: int = 128
    intermediate_size: int = 384
    num_hidden_layers: int = 4
    num_attention_heads: int = 4
    max_position_embeddings: int = 768


def build_small_base(path: Path, texts: Iterable[str], spec: SmallLlamaSpec = SmallLlamaSpec()) -> Path:
    """Create the small profile's starting checkpoint: random weights, tokenizer trained on `texts`."""
    tokenizer = train_tokenizer(texts, SPECIAL_TOKENS, spec.vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=spec.hidden_size, intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers, num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_attention_heads, max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    path.mkdir(parents=True, exist_ok=True)
    LlamaForCausalLM(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def training_texts(items: Sequence[CorefItem]) -> list[str]:
    """What the small tokenizer learns its vocabulary from: the prompts and answers of `items`."""
    return [format_prompt(item) + format_answer(item, item.answer) for item in items]


def load_base(base_model: str | Path):
    """(model, tokenizer) from a base checkpoint; a tokenizer without padding pads with EOS (Llama 3)."""
    tokenizer = AutoTokenizer.from_pretrained(str(base_model))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(str(base_model))
    return model, tokenizer


class CorefLMTask:
    """The loop's task: LM loss on the right option's continuation; held-out option-scoring accuracy
    selects the model (what the app will do with it, not a proxy)."""

    selection_metric = "accuracy"
    higher_is_better = True

    def __init__(self, base_model: str | Path, train_items: Sequence[CorefItem], val_items: Sequence[CorefItem],
                 max_length: int | None = None):
        self.model, self.tokenizer = load_base(base_model)
        self.max_length = max_length or self.model.config.max_position_embeddings
        self.val_items = list(val_items)
        self._examples = [encode_choice(self.tokenizer, format_prompt(item), format_answer(item, item.answer),
                                        self.max_length) for item in train_items]

    def train_dataset(self):
        return self._examples

    def collate(self, examples) -> dict[str, torch.Tensor]:
        """Right-padded batch; only continuation tokens are targets (prompt and padding are -100)."""
        ids, mask = pad_batch([e.input_ids for e in examples], self.tokenizer.pad_token_id)
        labels = ids.masked_fill(mask == 0, -100)
        for row, example in enumerate(examples):
            labels[row, :example.continuation_start] = -100
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}

    def loss(self, model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return model(**batch).loss

    def resolver(self) -> CorefResolver:
        scorer = CausalLMScorer(self.model, self.tokenizer, self.max_length)
        return CorefResolver(scorer, "causal_lm", {"max_length": self.max_length})

    def evaluate(self) -> dict[str, float]:
        metrics = accuracy(self.resolver(), self.val_items)
        return {"accuracy": metrics["accuracy"], "photo_accuracy": metrics["photo_accuracy"]}

    def save(self, path: Path) -> None:
        self.resolver().save_pretrained(path)
