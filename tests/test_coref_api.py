"""`POST /api/v1/coref` and `flask train|eval coref`: success, the JSON error conventions, the commands."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from app import create_app
from app.api.openapi import RESPONSE_SCHEMAS
from app.services.coref import OPTION_KEYS, CorefResolver, read_items
from trainers.coref import split_items, train_feature_scorer

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "coref" / "coref.jsonl"

BODY = {
    "turns": [
        {"speaker": "A", "text": "주말에 캠핑 다녀왔어."},
        {"speaker": "A", "photo": 1, "caption": "잔디 위에 텐트와 랜턴이 놓여있는 사진"},
        {"speaker": "B", "text": "좋다! 나는 집에서 빵 구웠어."},
        {"speaker": "B", "photo": 2, "caption": "식힘망 위에 식빵과 머핀이 놓여있는 사진"},
        {"speaker": "A", "text": "랜턴은 새로 산 거야."},
        {"speaker": "A", "text": "저거 결 살아 있는 거 봐. 찢어 먹으면 쫄깃하겠다."},
    ],
    "options": {"A": "A가 올린 사진 속 텐트", "B": "A가 올린 사진 속 랜턴",
                "C": "B가 올린 사진 속 식빵", "D": "B가 올린 사진 속 머핀"},
}


@pytest.fixture(scope="module")
def resolver() -> CorefResolver:
    train, _ = split_items(read_items(DATA))
    return CorefResolver(train_feature_scorer(train), "features")


@pytest.fixture
def coref_client(app, resolver):
    app.extensions["models"].set("coref", resolver)
    return app.test_client()


def test_answers_with_an_option_and_probabilities(coref_client):
    response = coref_client.post("/api/v1/coref", json=BODY)
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"answer", "option", "probabilities"}
    assert body["answer"] in ("C", "D")  # 저거: the partner's (B's) photo
    assert body["option"] == BODY["options"][body["answer"]]
    assert list(body["probabilities"]) == list(OPTION_KEYS)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0)
    assert max(body["probabilities"], key=body["probabilities"].get) == body["answer"]
    Draft202012Validator(RESPONSE_SCHEMAS["coref"]).validate(body)  # what the OpenAPI document promises


def test_photo_ids_may_be_strings(coref_client):
    turns = [dict(t, photo=f"p{t['photo']}") if "photo" in t else t for t in BODY["turns"]]
    assert coref_client.post("/api/v1/coref", json={**BODY, "turns": turns}).status_code == 200


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize("body, fragment", [
    (_without(BODY, "turns"), "missing field: turns"),
    (_without(BODY, "options"), "missing field: options"),
    ({**BODY, "options": _without(BODY["options"], "D")}, "missing field: D"),
    ({**BODY, "options": {**BODY["options"], "E": "A가 올린 사진 속 의자"}}, "E"),
    ({**BODY, "options": {**BODY["options"], "A": "   "}}, "options.A"),
    ({**BODY, "turns": []}, "turns"),
    ({**BODY, "turns": [t for t in BODY["turns"] if "photo" in t]}, "at least one utterance"),
    ({**BODY, "turns": [{"text": "이거 봐"}]}, "turns.0"),
    ({**BODY, "turns": [{"speaker": "A", "text": "이거", "caption": "사진"}]}, "turns.0"),
    ({**BODY, "turns": [{"speaker": "A", "text": 3}]}, "turns.0"),
    ({**BODY, "turns": "A: 이거 봐"}, "turns"),
    ({**BODY, "turns": BODY["turns"] * 10}, "turns"),
    ({**BODY, "turns": [{"speaker": "A", "text": "가" * 1001}]}, "turns.0"),
    ({**BODY, "extra": 1}, "extra"),
    ([BODY], "body"),
])
def test_invalid_requests_are_400(coref_client, body, fragment):
    response = coref_client.post("/api/v1/coref", json=body)
    assert response.status_code == 400
    assert fragment in response.get_json()["error"]["message"]


def test_bad_json_wrong_type_and_huge_bodies(coref_client):
    assert coref_client.post("/api/v1/coref", data="{", content_type="application/json").status_code == 400
    response = coref_client.post("/api/v1/coref", data=json.dumps(BODY), content_type="text/plain")
    assert response.status_code == 415 and response.get_json()["error"]["code"] == "unsupported_media_type"
    huge = {**BODY, "turns": [{"speaker": "A", "text": "가" * 900}] * 40}
    assert coref_client.post("/api/v1/coref", json=huge).status_code == 413


def test_missing_model_is_503(tmp_path):
    app = create_app({"COREF_MODEL": str(tmp_path / "nothing-here"), "DATA_DIR": ROOT / "data"})
    response = app.test_client().post("/api/v1/coref", json=BODY)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "service_unavailable"


@pytest.fixture
def isolated_runner(tmp_path):
    """A CLI runner whose model directories are all under tmp_path (the small base included)."""
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}", "DATA_DIR": ROOT / "data",
                      "MODELS_DIR": tmp_path / "models", "COREF_MODEL": str(tmp_path / "models" / "coref"),
                      "E5_BASE_MODEL": str(tmp_path / "no-e5")})
    return app.test_cli_runner(), tmp_path


def _last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_train_and_eval_commands_feature_path(isolated_runner):
    runner, tmp_path = isolated_runner
    missing = runner.invoke(args=["train", "coref", "--embedder"])
    assert missing.exit_code != 0 and "flask models import-e5" in missing.output

    trained = runner.invoke(args=["train", "coref"])
    assert trained.exit_code == 0, trained.output
    model_dir = tmp_path / "models" / "coref"
    assert (model_dir / "features.json").exists() and (model_dir / "train_config.json").exists()

    evaluated = runner.invoke(args=["eval", "coref"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = _last_json(evaluated.output)
    assert metrics["n"] == 40 and 0.0 <= metrics["accuracy"] <= metrics["photo_accuracy"] <= 1.0

    data = tmp_path / "three.jsonl"
    data.write_text("".join(line + "\n" for line in DATA.read_text(encoding="utf-8").splitlines()[:3]), encoding="utf-8")
    on_file = runner.invoke(args=["eval", "coref", "--data", str(data)])
    assert _last_json(on_file.output)["n"] == 3


def test_train_command_causal_lm_path_builds_the_small_base(isolated_runner):
    runner, tmp_path = isolated_runner
    result = runner.invoke(args=["train", "coref", "--architecture", "causal_lm", "--synthetic", "8", "--epochs", "1",
                                 "--max-steps-per-epoch", "2", "--heldout", "4"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models" / "coref-small-base" / "config.json").exists()
    model_dir = tmp_path / "models" / "coref"
    assert (model_dir / "lm" / "config.json").exists() and (model_dir / "loss.png").exists()
    assert CorefResolver.from_pretrained(model_dir).architecture == "causal_lm"
