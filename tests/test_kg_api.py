"""`POST /api/v1/keywords` request errors: JSON error bodies with the right status."""
from __future__ import annotations

import pytest


@pytest.fixture
def no_model(app, tmp_path):
    app.config["KOBART_MODEL"] = str(tmp_path / "no-such-model")
    return app


@pytest.mark.parametrize("body, fragment", [
    ({}, "missing field: text"),
    ({"text": ""}, "text"),
    ({"text": "   "}, "text"),
    ({"text": 42}, "text"),
    ({"text": ["관세"]}, "text"),
    ({"text": "관세", "extra": 1}, "extra"),
])
def test_invalid_bodies_are_400(client, body, fragment):
    response = client.post("/api/v1/keywords", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_request" and fragment in error["message"]


def test_too_long_text_is_400(app, client):
    app.config["MAX_MESSAGE_CHARS"] = 10
    response = client.post("/api/v1/keywords", json={"text": "관세" * 6})
    assert response.status_code == 400
    assert "long" in response.get_json()["error"]["message"]


def test_wrong_content_type_is_415_and_bad_json_400(client):
    assert client.post("/api/v1/keywords", data="text=관세", content_type="text/plain").status_code == 415
    response = client.post("/api/v1/keywords", data="{not json", content_type="application/json")
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_json"


def test_get_is_405(client):
    assert client.get("/api/v1/keywords").status_code == 405


def test_without_a_trained_extractor_it_is_503(no_model):
    response = no_model.test_client().post("/api/v1/keywords", json={"text": "관세 납부"})
    assert response.status_code == 503
    assert "keywords" in response.get_json()["error"]["message"]
