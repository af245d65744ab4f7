"""The default coreference scorer: linguistic features (kiwipiepy) + logistic regression, save/load."""
from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from app.services.coref import (
    OPTION_KEYS,
    CorefItem,
    CorefResolver,
    FeatureScorer,
    accuracy,
    demonstratives,
    option_features,
    option_owner,
    parse_option,
    read_items,
)
from trainers.coref import split_items, train_feature_scorer

DATA = Path(__file__).resolve().parent.parent / "data" / "coref" / "coref.jsonl"


class HashingEmbedder:
    """A tiny stand-in for e5: character bigrams hashed into a small vector."""

    dim = 32

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for a, b in zip(text, text[1:]):
                out[row, zlib.crc32((a + b).encode()) % self.dim] += 1.0
        return out


def dialogue(final_speaker: str, final_text: str) -> CorefItem:
    return CorefItem.from_json({
        "turns": [
            {"speaker": "A", "text": "주말에 캠핑 다녀왔어."},
            {"speaker": "A", "photo": 1, "caption": "잔디 위에 텐트와 랜턴이 놓여있는 사진"},
            {"speaker": "B", "text": "좋다! 나는 집에서 빵 구웠어."},
            {"speaker": "B", "photo": 2, "caption": "식힘망 위에 식빵과 머핀이 놓여있는 사진"},
            {"speaker": "A", "text": "랜턴은 새로 산 거야."},
            {"speaker": "B", "text": "머핀은 처음 만들어 봤어."},
            {"speaker": final_speaker, "text": final_text},
        ],
        "options": {"A": "A가 올린 사진 속 텐트", "B": "A가 올린 사진 속 랜턴",
                    "C": "B가 올린 사진 속 식빵", "D": "B가 올린 사진 속 머핀"},
    })


@pytest.fixture(scope="module")
def authored() -> list[CorefItem]:
    return read_items(DATA)


@pytest.fixture(scope="module")
def trained(authored) -> tuple[CorefResolver, list[CorefItem]]:
    train, heldout = split_items(authored)
    return CorefResolver(train_feature_scorer(train), "features"), heldout


@pytest.mark.parametrize("text, series, determiner", [
    ("이거는 40% 세일해서 샀어.", {"proximal"}, False),
    ("저거 다 뜨면 나도 하나만 떠 줘.", {"distal"}, False),
    ("그 날개 넷 달린 거 어제 처음 띄웠어.", {"medial"}, True),
    ("근데 저 친구 바위 위에서 낮잠 자네.", {"distal"}, True),
    ("걔 요즘 간식 숨겨 놓으면 다 찾아내.", {"medial"}, False),
    ("저는 괜찮아요. 오늘 날씨 좋네요.", set(), False),
])
def test_demonstratives_are_found_by_their_series(text, series, determiner):
    found = demonstratives(text)
    assert set(found.series) == series
    assert found.determiner == determiner


def test_options_are_parsed_and_owned_by_the_poster():
    item = dialogue("A", "이거 밤에 켜 두면 분위기 좋아.")
    assert parse_option(item.options["C"]).owner == "B"
    assert parse_option(item.options["C"]).object == "식빵"
    free_form = CorefItem(item.turns, {**item.options, "D": "머핀"})
    assert option_owner(free_form, "D") == "B"  # found through the caption that names it


def test_features_encode_deixis_and_mentions():
    rows = option_features(dialogue("A", "이거 밤에 켜 두면 분위기 좋아."))
    assert [r["own_photo"] for r in rows] == [1.0, 1.0, 0.0, 0.0]
    assert rows[0]["proximal_x_own"] == 1.0 and rows[2]["proximal_x_partner"] == 1.0
    assert rows[1]["recency"] == 0.5 and rows[3]["recency"] == 1.0  # 랜턴 two turns back, 머핀 just before
    assert rows[0]["never_mentioned"] == 1.0


def test_feature_model_learns_deixis_from_authored_data(trained):
    resolver, _ = trained
    own = resolver.resolve_items([dialogue("A", "이거 밤에 켜 두면 분위기 좋아.")])[0]
    partner = resolver.resolve_items([dialogue("A", "저거 밤에 켜 두면 분위기 좋아.")])[0]
    assert own.answer in ("A", "B")  # A's own photo
    assert partner.answer in ("C", "D")  # B's photo
    assert sum(own.probabilities.values()) == pytest.approx(1.0)


def test_feature_model_beats_chance_on_heldout(trained):
    resolver, heldout = trained
    metrics = accuracy(resolver, heldout)
    assert metrics["n"] == 40
    assert metrics["accuracy"] > 0.4 and metrics["photo_accuracy"] > 0.65  # chance: 0.25 / 0.5


def test_save_load_round_trip_with_embedder(authored, tmp_path):
    embedder = HashingEmbedder()
    scorer = train_feature_scorer(authored[:40], embedder, embedder_path="tiny-hashing")
    assert "cos_final" in scorer.feature_names
    resolver = CorefResolver(scorer, "features")
    resolver.save_pretrained(tmp_path)
    loaded = CorefResolver.from_pretrained(tmp_path, embedder=embedder)
    assert isinstance(loaded.scorer, FeatureScorer) and loaded.architecture == "features"
    items = authored[40:50]
    def table(r: CorefResolver) -> list[float]:
        return [res.probabilities[k] for res in r.resolve_items(items) for k in OPTION_KEYS]

    assert table(loaded) == pytest.approx(table(resolver))


def test_resolve_accepts_the_api_shape(trained):
    resolver, heldout = trained
    item = heldout[0]
    result = resolver.resolve([t.to_json() for t in item.turns], item.options)
    assert result.answer in OPTION_KEYS and result.option == item.options[result.answer]
    assert sum(result.probabilities.values()) == pytest.approx(1.0)


def test_e5_plugs_in_as_the_embedder(e5_dir, authored):
    """The real encoder behind `TextEmbedder`: cosine features are finite and centred over the options."""
    from app.services.coref import embedding_features, load_embedder

    rows = embedding_features(authored[:2], load_embedder(str(e5_dir)))
    for item_rows in rows:
        cosines = [row["cos_final"] for row in item_rows]
        assert all(np.isfinite(cosines)) and sum(cosines) == pytest.approx(0.0, abs=1e-5)
        assert sum(row["cos_final_is_max"] for row in item_rows) >= 1
