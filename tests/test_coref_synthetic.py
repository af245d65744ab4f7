"""The template generator of synthetic coreference dialogues produces valid, well-formed items."""
from __future__ import annotations

import re

import pytest

from app.services.coref import OPTION_KEYS, CorefItem, demonstratives, option_owner, parse_option
from trainers.coref_synthetic import fill, generate


@pytest.fixture(scope="module")
def generated() -> list[dict]:
    return generate(200, seed=3)


def test_items_have_the_authored_format(generated):
    for obj in generated:
        item = CorefItem.from_json(obj)
        assert item.answer in OPTION_KEYS
        photos = [t for t in item.turns if t.is_photo]
        assert [p.photo for p in photos] == ["1", "2"] and {p.speaker for p in photos} == {"A", "B"}
        assert not item.turns[-1].is_photo
        assert len(set(item.options.values())) == 4


def test_every_option_is_in_its_owners_photo(generated):
    for obj in generated:
        item = CorefItem.from_json(obj)
        captions = {t.speaker: t.caption for t in item.turns if t.is_photo}
        for key in OPTION_KEYS:
            parsed = parse_option(item.options[key])
            assert parsed.object in captions[parsed.owner]


def test_final_utterance_points_with_a_demonstrative(generated):
    found = [demonstratives(CorefItem.from_json(obj).final_turn.text).series for obj in generated]
    assert sum(bool(series) for series in found) >= 0.95 * len(generated)


def test_deixis_mostly_follows_whose_photo_it_is(generated):
    """이거 for the final speaker's own photo, 저거 for the partner's (like the authored data)."""
    agree = total = 0
    for obj in generated:
        item = CorefItem.from_json(obj)
        series = demonstratives(item.final_turn.text).series
        own = option_owner(item, item.answer) == item.final_turn.speaker
        if series in ({"proximal"}, {"distal"}):
            total += 1
            agree += series == {"proximal" if own else "distal"}
    assert agree / total > 0.8


def test_answers_are_spread_over_the_options(generated):
    counts = {key: sum(obj["answer"] == key for obj in generated) for key in OPTION_KEYS}
    assert min(counts.values()) > 0.15 * len(generated)


def test_generation_is_reproducible():
    assert generate(5, seed=7) == generate(5, seed=7)
    assert generate(5, seed=7) != generate(5, seed=8)


def test_particles_agree_with_the_final_sound():
    assert fill("{x:은} 좋아", x="헬멧") == "헬멧은 좋아"
    assert fill("{x:은} 좋아", x="자전거") == "자전거는 좋아"
    assert fill("{x:와} {y:이}", x="텐트", y="랜턴") == "텐트와 랜턴이"


def test_no_doubled_or_dangling_particles(generated):
    broken = re.compile(r"(은는|는은|을를|를을|와과|과와)|\s(은|는|을|를|로|으로)\s")
    for obj in generated:
        for turn in obj["turns"]:
            text = turn.get("text") or turn["caption"]
            assert not broken.search(text), text
