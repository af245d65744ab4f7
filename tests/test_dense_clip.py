"""Text-CLIP encoder, loss and trainer, on tiny models built from config (seconds on a CPU)."""
from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertModel

from indexer.encoder import TextClip
from indexer.losses import SymmetricInfoNCELoss
from trainers.clip import (ClipTask, ClipTaskSettings, add_noise, partition_batches, substitute_synonym,
                           training_queries)
from trainers.data import faq_from_json, heldout_split, read_jsonl
from trainers.loop import TrainConfig, train
from trainers.tokenizer import train_tokenizer

DATA = Path(__file__).resolve().parent.parent / "data" / "customs"
SPECIAL = {"bos_token": "<s>", "eos_token": "</s>", "pad_token": "<pad>", "unk_token": "<unk>"}
FAQS_PER_PARTITION = 6


@pytest.fixture(scope="module")
def records():
    """A few FAQs of every partition, as the trainer receives them."""
    out = []
    for path in sorted(DATA.glob("faq_*.jsonl")):
        out += [faq_from_json(o) for o in list(read_jsonl(path))[:FAQS_PER_PARTITION]]
    return out


@pytest.fixture(scope="module")
def synonyms():
    return [o["terms"] for path in sorted(DATA.glob("synonyms_*.jsonl")) for o in read_jsonl(path)]


@pytest.fixture(scope="module")
def tokenizer(records):
    texts = [t for r in records for t in (r.question, r.answer, *(p.text for p in r.paraphrases))]
    return train_tokenizer(texts, SPECIAL, vocab_size=600)


def tiny_config(tokenizer) -> BertConfig:
    return BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, max_position_embeddings=256, pad_token_id=tokenizer.pad_token_id)


def tiny_clip(tokenizer, shared: bool = True) -> TextClip:
    torch.manual_seed(0)
    return TextClip.from_config(tiny_config(tokenizer), tokenizer, shared=shared, passage_max_length=64)


def test_loss_is_clip_loss_for_one_query_per_passage():
    torch.manual_seed(0)
    q = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    p = torch.nn.functional.normalize(torch.randn(5, 8), dim=-1)
    scale, targets = torch.tensor(20.0), torch.arange(5)
    logits = scale * q @ p.T
    clip = (torch.nn.functional.cross_entropy(logits, targets) + torch.nn.functional.cross_entropy(logits.T, targets)) / 2
    assert torch.allclose(SymmetricInfoNCELoss()(q, p, scale, targets), clip, atol=1e-6)


def test_loss_prefers_matching_pairs_and_handles_shared_passages():
    p = torch.eye(3)
    loss = SymmetricInfoNCELoss()
    targets = torch.tensor([0, 0, 1, 2])  # two queries for passage 0
    aligned = loss(p[targets], p, torch.tensor(20.0), targets)
    shuffled = loss(p[torch.tensor([1, 2, 0, 1])], p, torch.tensor(20.0), targets)
    assert aligned < 0.1 < shuffled


def test_loss_decreases_on_a_tiny_batch(tokenizer, records):
    model = tiny_clip(tokenizer)
    queries = model.tokenize([r.paraphrases[0].text for r in records[:8]], is_query=True)
    passages = model.tokenize([r.answer for r in records[:8]], is_query=False)
    targets = torch.arange(8)
    loss_fn = SymmetricInfoNCELoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = loss_fn(*model(queries, passages), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize("shared", [True, False])
def test_save_then_load_gives_identical_embeddings(tokenizer, tmp_path, shared):
    model = tiny_clip(tokenizer, shared=shared).eval()
    with torch.no_grad():
        model.logit_scale.fill_(3.0)
    texts = ["여행자 휴대품 면세한도는?", "해외직구 통관 절차"]
    model.save_pretrained(tmp_path)
    loaded = TextClip.from_pretrained(tmp_path).eval()
    assert loaded.settings.shared is shared
    assert loaded.logit_scale.item() == pytest.approx(3.0)
    assert torch.equal(model.encode_queries(texts), loaded.encode_queries(texts))
    assert torch.equal(model.encode_passages(texts), loaded.encode_passages(texts))
    if not shared:  # the towers really differ
        assert not torch.allclose(loaded.encode_queries(texts), loaded.encode_passages(texts))


def test_plain_encoder_directory_loads_as_zero_shot_model(tokenizer, tmp_path):
    """The imported e5 directory (a bare BertModel + tokenizer) is usable as a TextClip."""
    BertModel(tiny_config(tokenizer), add_pooling_layer=False).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    model = TextClip.from_pretrained(tmp_path)
    vectors = model.encode_queries(["관세 납부 방법"])
    assert vectors.shape == (1, 32)
    assert vectors.norm(dim=1).item() == pytest.approx(1.0, abs=1e-5)
    assert model.settings.query_prefix == "query: "


def test_augmentation_changes_text_plausibly():
    rng = random.Random(0)
    groups = [["면세한도", "면세범위"]]
    assert substitute_synonym("입국 면세한도 얼마예요?", groups, rng) == "입국 면세범위 얼마예요?"
    assert substitute_synonym("관련 없는 문장", groups, rng) == "관련 없는 문장"
    noisy = add_noise("해외직구 통관 절차가 궁금해요", rng)
    assert noisy != "해외직구 통관 절차가 궁금해요" and abs(len(noisy) - 16) <= 1


def test_training_queries_sample_the_labelled_messages_each_epoch(records):
    record = replace(records[0], labelled_messages=tuple(f"사용자 메시지 {i}번 면세 얼마?" for i in range(5)))
    settings = ClipTaskSettings(base_model="unused", synonym_prob=0.0, noise_prob=0.0, pseudo_queries_per_faq=0,
                                keyword_queries_per_faq=0, labelled_messages_per_faq=2)
    drawn = [training_queries(record, [], settings, random.Random(seed)) for seed in range(6)]
    for queries in drawn:
        assert queries[:1 + len(record.paraphrases)] == [record.question, *(p.text for p in record.paraphrases)]
        assert len(set(queries[1 + len(record.paraphrases):]) & set(record.labelled_messages)) == 2
    assert len({q for queries in drawn for q in queries} & set(record.labelled_messages)) > 2
    assert training_queries(records[0], [], settings, random.Random(0)) == drawn[0][:1 + len(record.paraphrases)]


def test_heldout_split_holds_out_a_paraphrase_and_keeps_the_labelled_messages(records):
    taught = [replace(r, labelled_messages=(f"{r.doc_id} 어케 됨?",)) for r in records]
    train, heldout = heldout_split(taught)
    assert len(heldout) == len(train) == len(records)
    for record, query in zip(train, heldout):
        assert record.labelled_messages == (f"{record.doc_id} 어케 됨?",)
        assert query.doc_id == record.doc_id and query.text not in {p.text for p in record.paraphrases}


def test_batches_stay_within_one_partition(records, synonyms):
    settings = ClipTaskSettings(base_model="unused", batch_queries=8)
    for batch in partition_batches(records, synonyms, settings, random.Random(0)):
        assert len({d.split("-")[0] for d in batch.doc_ids}) == 1
        assert len(batch.queries) == len(batch.targets) <= 8
        assert max(batch.targets) < len(batch.doc_ids)


def _task(tokenizer, records, synonyms, towers: str = "shared") -> ClipTask:
    model = tiny_clip(tokenizer, shared=towers == "shared")
    return ClipTask(model, records, synonyms, ClipTaskSettings(base_model="tiny", towers=towers, batch_queries=16))


def test_training_reports_heldout_topk_and_resumes(tokenizer, records, synonyms, tmp_path):
    out = tmp_path / "clip"
    first = train(_task(tokenizer, records, synonyms), TrainConfig(str(out), epochs=1, batch_size=1, lr=1e-3),
                  log=lambda *_: None)
    assert [h["epoch"] for h in first] == [1]
    assert {"top1", "top5", "top10", "mrr10"} <= set(first[0])
    messages = []
    resumed = train(_task(tokenizer, records, synonyms),
                    TrainConfig(str(out), epochs=2, batch_size=1, lr=1e-3, resume=True), log=messages.append)
    assert [h["epoch"] for h in resumed] == [1, 2]
    assert resumed[0] == first[0]
    assert any("resuming" in m and "epoch 2" in m for m in messages)
    assert TextClip.from_pretrained(out).encode_queries(["통관"]).shape == (1, 32)


def test_locked_answer_tower_does_not_move(tokenizer, records, synonyms, tmp_path):
    task = _task(tokenizer, records, synonyms, towers="locked")
    before = {k: v.clone() for k, v in task.model.answer_encoder.state_dict().items()}
    train(task, TrainConfig(str(tmp_path / "clip"), epochs=1, batch_size=1, lr=1e-3, max_steps_per_epoch=3),
          log=lambda *_: None)
    after = TextClip.from_pretrained(tmp_path / "clip").answer_encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
