"""`POST /api/v1/coref`: which photographed object does the dialogue's final demonstrative point to?

Request: `{"turns": [{"speaker", "text"} | {"speaker", "photo", "caption"}], "options": {"A".."D"}}`.
Response: `{"answer": "A".."D", "option": str, "probabilities": {"A".."D": float}}` (they sum to 1).
"""
from __future__ import annotations

from flask import current_app

from app.api import bp
from app.api.validation import json_body, register_schema, text_field
from app.errors import ApiError
from app.services.coref import OPTION_KEYS
from app.services.registry import models

MAX_SPEAKER_CHARS = 40
MAX_OPTION_CHARS = 200
MAX_PHOTO_ID_CHARS = 40


def coref_schema(config) -> dict:
    """The request schema; its limits come from the configuration."""
    speaker = text_field(MAX_SPEAKER_CHARS)
    text_turn = {"type": "object", "required": ["speaker", "text"], "additionalProperties": False,
                 "properties": {"speaker": speaker, "text": text_field(config["MAX_MESSAGE_CHARS"])}}
    photo_turn = {"type": "object", "required": ["speaker", "photo", "caption"], "additionalProperties": False,
                  "properties": {"speaker": speaker,
                                 "photo": {"type": ["integer", "string"], "maxLength": MAX_PHOTO_ID_CHARS},
                                 "caption": text_field(config["MAX_MESSAGE_CHARS"])}}
    return {
        "type": "object",
        "required": ["turns", "options"],
        "properties": {
            "turns": {"type": "array", "minItems": 1, "maxItems": config["COREF_MAX_TURNS"],
                      "items": {"oneOf": [text_turn, photo_turn]}},
            "options": {"type": "object", "required": list(OPTION_KEYS), "additionalProperties": False,
                        "properties": {key: text_field(MAX_OPTION_CHARS) for key in OPTION_KEYS}},
        },
        "additionalProperties": False,
    }


register_schema("coref", coref_schema)


@bp.post("/coref")
def resolve_coreference():
    body = json_body(coref_schema(current_app.config))
    if all("text" not in turn for turn in body["turns"]):
        raise ApiError(400, "turns: the dialogue needs at least one utterance (a turn with text)", "invalid_request")
    result = models().get("coref").resolve(body["turns"], body["options"])
    return {"answer": result.answer, "option": result.option, "probabilities": result.probabilities}
