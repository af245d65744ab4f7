"""The keyword extractor: parsing, scoring, a tiny BART that learns, the commands, the endpoint."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest

from kg.extractor import (ExtractorSettings, KeywordExtractor, load_settings, parse_keywords, score_keywords,
                          segment)
from trainers.data import Query
from trainers.kobart import (SPECIAL_TOKENS, DenoisingSpec, KeywordTask, SmallBartSpec, build_small_base,
                             mask_spans, small_bart, train_extractor)
from trainers.loop import TrainConfig, train
from trainers.tokenizer import train_tokenizer

TINY = SmallBartSpec(vocab_size=300, d_model=32, layers=1, heads=2, ffn_dim=64, max_positions=128, dropout=0.0)
PAIRS = [
    ("이사화물 통관예약을 하면 뭐가 좋나요?", ["이사화물", "통관", "예약", "장점"]),
    ("개인통관고유부호는 어디서 발급받나요?", ["개인통관고유부호", "발급"]),
    ("여행자 면세한도는 얼마인가요?", ["여행자", "면세한도"]),
    ("관세는 어떻게 납부하나요?", ["관세", "납부"]),
    ("해외직구 물품이 통관 보류되었어요", ["해외직구", "통관 보류"]),
    ("술은 몇 병까지 면세인가요?", ["술", "면세"]),
]
VALIDATION = [Query("이사화물 통관예약 장점", "M-001", ("이사화물", "통관예약")), Query("관세 납부 방법", "G-001", ("관세", "납부"))]


# --- parsing and scoring -------------------------------------------------------------------------
def test_parse_keywords_cleans_and_deduplicates():
    assert parse_keywords("이사화물, 통관, 예약, 장점") == ["이사화물", "통관", "예약", "장점"]
    assert parse_keywords(" 통관 예약 ,통관예약,, 장점.  ;  장점 ") == ["통관 예약", "장점"]
    assert parse_keywords("세금/관세\n면세") == ["세금", "관세", "면세"]
    assert parse_keywords("") == [] and parse_keywords(" , ,") == []
    assert parse_keywords("a, b, c, d", max_keywords=2) == ["a", "b"]


def test_morpheme_split_keywords_are_joined_back():
    assert segment("통관예약을") == "통관 예약 을"
    assert parse_keywords("이사 화물 , 통관 예약", joined=True) == ["이사화물", "통관예약"]
    assert parse_keywords("하 \u11af 수", joined=True) == ["할수"]  # stem + jamo ending recomposed


def test_score_keywords_counts_normalised_matches_and_morphemes():
    scores = score_keywords([["통관 예약", "장점"]], [["통관예약", "이사화물"]])
    assert scores.keyword_precision == 0.5 and scores.keyword_recall == 0.5
    # morphemes: predicted {통관, 예약, 장점}, gold {통관, 예약, 이사화물}
    assert scores.morpheme_precision == pytest.approx(2 / 3) and scores.morpheme_recall == pytest.approx(2 / 3)
    assert score_keywords([[]], [["관세"]]).keyword_f1 == 0.0


def test_mask_spans_replaces_about_the_ratio_by_single_masks():
    ids = list(range(10, 110))
    noisy = mask_spans(ids, 1, DenoisingSpec(mask_ratio=0.3), random.Random(0), np.random.default_rng(0))
    assert 1 in noisy and len(noisy) < len(ids)
    kept = [t for t in noisy if t != 1]
    assert len(kept) == 70 and kept == sorted(kept)


# --- a tiny model that learns ----------------------------------------------------------------------
def _tiny_extractor(presegment: bool) -> KeywordExtractor:
    texts = [t for t, _ in PAIRS] + [", ".join(k) for _, k in PAIRS]
    tokenizer = train_tokenizer([segment(t) for t in texts] + texts, SPECIAL_TOKENS, vocab_size=TINY.vocab_size)
    settings = ExtractorSettings(max_input_tokens=48, max_new_tokens=16, num_beams=2, presegment=presegment)
    return KeywordExtractor(small_bart(tokenizer, TINY), tokenizer, settings)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny extractor trained for a few epochs, and its training history."""
    import torch

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("kobart") / "tiny"
    extractor = _tiny_extractor(presegment=True)
    history = train(KeywordTask(extractor, PAIRS, VALIDATION),
                    TrainConfig(output_dir=str(out), epochs=20, batch_size=3, lr=3e-3, warmup_ratio=0.0,
                                early_stop_patience=100))
    return out, history


def test_the_extractor_trains_and_its_loss_falls(trained):
    out, history = trained
    losses = [h["train_loss"] for h in history]
    assert losses[-1] < 0.7 * losses[0]
    assert {"keyword_f1", "val_loss", "morpheme_f1"} <= set(history[0])
    assert all((out / name).exists() for name in ("loss.png", "train_config.json", "config.json", "extractor.json"))


def test_saved_extractor_loads_with_its_settings_and_extracts(trained):
    out, _ = trained
    extractor = KeywordExtractor.from_pretrained(out)
    assert extractor.settings.presegment and extractor.settings.max_input_tokens == 48
    keywords = extractor.extract("이사화물 통관예약을 하면 뭐가 좋나요?")
    assert keywords and all(isinstance(k, str) and k.strip() for k in keywords)
    assert len({k.replace(" ", "") for k in keywords}) == len(keywords)


def test_blank_and_very_long_inputs(trained):
    extractor = KeywordExtractor.from_pretrained(trained[0])
    assert extractor.extract("") == [] and extractor.extract("   \n") == []
    assert isinstance(extractor.extract("통관 " * 2000), list)
    assert extractor.extract_batch(["", "관세 납부"])[0] == []


def test_small_base_then_fine_tuning_is_one_path(tmp_path):
    texts = [t for t, _ in PAIRS] * 3
    base = build_small_base(texts, tmp_path / "base", TrainConfig(output_dir=str(tmp_path / "base"), epochs=1,
                                                                   batch_size=4, lr=1e-3), spec=TINY)
    assert load_settings(base).presegment
    assert (base / "tokenizer.json").exists() and (base / "model.safetensors").exists()
    history = train_extractor(base, PAIRS, VALIDATION, TrainConfig(output_dir=str(tmp_path / "ft"), epochs=1,
                                                                   batch_size=4, lr=1e-3))
    assert len(history) == 1
    assert load_settings(tmp_path / "ft").presegment
    assert json.loads((tmp_path / "ft" / "train_config.json").read_text())["task"]["base_model"] == str(base)


# --- the endpoint ----------------------------------------------------------------------------------
def test_keywords_endpoint_answers_with_the_installed_extractor(app, client, trained):
    app.extensions["models"].set("keywords", KeywordExtractor.from_pretrained(trained[0]))
    response = client.post("/api/v1/keywords", json={"text": "이사화물 통관예약을 하면 뭐가 좋나요?"})
    assert response.status_code == 200
    keywords = response.get_json()["keywords"]
    assert isinstance(keywords, list) and keywords and all(isinstance(k, str) for k in keywords)


def test_keywords_endpoint_loads_the_extractor_from_config(tmp_path, trained):
    from app import create_app

    app = create_app({"KOBART_MODEL": str(trained[0]), "SQLALCHEMY_DATABASE_URI": "sqlite://"})
    response = app.test_client().post("/api/v1/keywords", json={"text": "관세 납부"})
    assert response.status_code == 200 and isinstance(response.get_json()["keywords"], list)



def test_small_bart_starts_able_to_copy():
    import torch

    model = _tiny_extractor(presegment=False).model
    for layer in model.model.decoder.layers:
        assert torch.equal(layer.encoder_attn.v_proj.weight, torch.eye(TINY.d_model))
        assert torch.equal(layer.encoder_attn.out_proj.weight, torch.eye(TINY.d_model))
