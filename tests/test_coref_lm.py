"""The causal-LM coreference path: option scoring by log-likelihood, and training on the shared loop."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from app.services.coref import (
    OPTION_KEYS,
    CausalLMScorer,
    CorefResolver,
    continuation_log_likelihoods,
    encode_choice,
    format_answer,
    format_prompt,
    pad_batch,
    read_items,
)
from trainers.coref import CorefLMTask, SmallLlamaSpec, build_small_base, training_texts
from trainers.loop import TrainConfig, train

DATA = Path(__file__).resolve().parent.parent / "data" / "coref" / "coref.jsonl"
TINY = SmallLlamaSpec(vocab_size=400, hidden_size=64, intermediate_size=128, num_hidden_layers=1,
                      num_attention_heads=2, max_position_embeddings=512)


@pytest.fixture(scope="module")
def items():
    return read_items(DATA)[:8]


@pytest.fixture(scope="module")
def tiny_base(items, tmp_path_factory) -> Path:
    return build_small_base(tmp_path_factory.mktemp("coref-base"), training_texts(items), TINY)


@pytest.fixture(scope="module")
def trained(items, tiny_base, tmp_path_factory):
    """One dialogue learnt by heart on the shared loop: its answer's continuation becomes likely."""
    target = items[0]
    output = tmp_path_factory.mktemp("coref-lm")
    task = CorefLMTask(tiny_base, [target] * 16, [target])
    history = train(task, TrainConfig(output_dir=str(output), epochs=10, batch_size=4, lr=1e-2, warmup_ratio=0.0,
                                      early_stop_patience=10, device="cpu"), log=lambda _: None)
    return task, history, output, target


def test_prompt_follows_the_seed_format(items):
    prompt = format_prompt(items[0])
    assert prompt.endswith("선택지:\n" + "\n".join(f"{k}) {items[0].options[k]}" for k in OPTION_KEYS) + "\n\n정답:")
    assert "(사진 1: " in prompt
    assert format_answer(items[0], "C") == f" C) {items[0].options['C']}"


def test_long_prompts_lose_their_start_not_the_options(items, tiny_base):
    task = CorefLMTask(tiny_base, items[:1], items[:1], max_length=64)
    prompt, answer = format_prompt(items[0]), format_answer(items[0], "A")
    choice = encode_choice(task.tokenizer, prompt, answer, max_length=64)
    assert len(choice.input_ids) <= 64
    assert choice.input_ids[0] == task.tokenizer.bos_token_id
    assert task.tokenizer.decode(choice.input_ids[choice.continuation_start:], skip_special_tokens=True).strip() \
        == answer.strip()


def test_collate_trains_only_on_the_answer(items, tiny_base):
    task = CorefLMTask(tiny_base, items[:2], items[:1])
    batch = task.collate(task.train_dataset())
    for row, example in enumerate(task.train_dataset()):
        targets = batch["labels"][row]
        assert (targets[:example.continuation_start] == -100).all()
        assert (targets[example.continuation_start:len(example.input_ids)] != -100).all()
        assert (targets[len(example.input_ids):] == -100).all()


def test_log_likelihood_sums_only_the_continuation():
    """A model that puts all probability on token 1 scores a continuation of 1s at 0, others below."""

    class OnesModel(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            logits = torch.full((*input_ids.shape, 3), -30.0)
            logits[..., 1] = 30.0
            return type("Out", (), {"logits": logits})()

    ids, mask = pad_batch([[0, 2, 2, 1, 1], [0, 2, 2, 2, 1, 1, 1]], pad_id=0)
    scores = continuation_log_likelihoods(OnesModel(), ids, mask, [3, 3])
    assert scores[0].item() == pytest.approx(0.0, abs=1e-6)  # 1, 1
    assert scores[1].item() < -50  # 2, 1, 1, 1: the first continuation token is unlikely


def test_loss_falls_on_the_shared_loop(trained):
    _, history, output, _ = trained
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.5 * losses[0]
    assert (output / "loss.png").exists() and (output / "checkpoint" / "state.pt").exists()
    assert json.loads((output / "train_config.json").read_text())["epochs"] == 10


def test_scorer_picks_the_option_made_likely(trained):
    task, _, _, target = trained
    result = task.resolver().resolve_items([target])[0]
    assert result.answer == target.answer
    assert result.probabilities[target.answer] > 0.5
    assert sum(result.probabilities.values()) == pytest.approx(1.0)


def test_save_load_round_trip(trained, tmp_path):
    task, _, _, target = trained
    task.resolver().save_pretrained(tmp_path)
    loaded = CorefResolver.from_pretrained(tmp_path)
    assert loaded.architecture == "causal_lm" and isinstance(loaded.scorer, CausalLMScorer)
    expected = task.resolver().resolve_items([target])[0].probabilities
    got = loaded.resolve_items([target])[0].probabilities
    assert [got[k] for k in OPTION_KEYS] == pytest.approx([expected[k] for k in OPTION_KEYS], abs=1e-5)


def test_the_loops_best_model_is_a_loadable_resolver(trained):
    _, history, output, target = trained
    loaded = CorefResolver.from_pretrained(output)
    best = max(h["accuracy"] for h in history)
    assert best == 1.0
    assert loaded.resolve_items([target])[0].answer == target.answer
