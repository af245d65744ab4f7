"""`flask train kogpt2` and `flask eval kogpt2` end to end on a tiny base model and a few pairs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.services.fallback import ChitChatGenerator
from trainers.kogpt2 import SmallGPT2Spec, build_small_base, read_chitchat, reply_f1, split_chitchat

DATA = Path(__file__).resolve().parent.parent / "data" / "chitchat" / "chitchat.jsonl"
TINY = SmallGPT2Spec(vocab_size=400, n_positions=64, n_embd=32, n_layer=1, n_head=2, dropout=0.0)
PAIRS_USED = 40


@pytest.fixture(scope="module")
def small_data(tmp_path_factory) -> Path:
    """40 lines of the real file, taken from all three label groups."""
    lines = DATA.read_text(encoding="utf-8").splitlines()
    step = len(lines) // PAIRS_USED
    path = tmp_path_factory.mktemp("chitchat") / "chitchat.jsonl"
    path.write_text("\n".join(lines[::step][:PAIRS_USED]) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory, small_data) -> Path:
    train_pairs, _ = split_chitchat(read_chitchat(small_data))
    return build_small_base(tmp_path_factory.mktemp("kogpt2") / "base",
                            [t for p in train_pairs for t in (p.question, p.answer)], TINY)


def test_reply_f1_scores_shared_character_bigrams():
    assert reply_f1("즐거운 여행 되세요!", "즐거운 여행 되세요!") == 1.0
    assert reply_f1("", "즐거운 여행 되세요!") == 0.0
    assert reply_f1("좋은 꿈 꿔", "즐거운 여행 되세요!") == 0.0
    assert 0 < reply_f1("여행 잘 다녀오세요", "즐거운 여행 되세요!") < 1


def test_split_is_shuffled_and_disjoint():
    pairs = read_chitchat(DATA)
    train_pairs, val_pairs = split_chitchat(pairs)
    assert len(val_pairs) == 80 and len(train_pairs) == 720
    assert not {p.pair_id for p in train_pairs} & {p.pair_id for p in val_pairs}
    assert {p.label for p in val_pairs} == {0, 1, 2}  # the file is grouped by label: a shuffle is needed
    assert split_chitchat(list(reversed(pairs))) == (train_pairs, val_pairs)


def test_train_then_eval(runner, tmp_path, small_data, tiny_base):
    output = tmp_path / "kogpt2"
    result = runner.invoke(args=["train", "kogpt2", "--base-model", str(tiny_base), "--data", str(small_data),
                                 "--output", str(output), "--epochs", "2", "--batch-size", "8", "--lr", "5e-3"])
    assert result.exit_code == 0, result.output
    assert "training on 36 pairs, validating on 4" in result.output
    assert str(output) in result.output
    assert isinstance(ChitChatGenerator.from_pretrained(output), ChitChatGenerator)

    samples = tmp_path / "samples.jsonl"
    result = runner.invoke(args=["eval", "kogpt2", "--model", str(output), "--data", str(small_data),
                                 "--samples", str(samples)])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    assert metrics["pairs"] == 4
    for key in ("val_loss", "val_perplexity", "usable_share", "reply_f1", "avg_reply_chars", "distinct_1",
                "distinct_2", "repeat_rate", "latency_ms_mean"):
        assert key in metrics
    assert 0 <= metrics["usable_share"] <= 1
    assert len(samples.read_text(encoding="utf-8").splitlines()) == 4


def test_resume_without_checkpoint_fails_cleanly(runner, tmp_path, small_data, tiny_base):
    result = runner.invoke(args=["train", "kogpt2", "--base-model", str(tiny_base), "--data", str(small_data),
                                 "--output", str(tmp_path / "fresh"), "--resume"])
    assert result.exit_code != 0
    assert "nothing to resume" in str(result.exception)
