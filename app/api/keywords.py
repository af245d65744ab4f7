"""`POST /api/v1/keywords`: the keywords of a question, as the knowledge graph reads them.

Request: `{"text": str}` (at most MAX_MESSAGE_CHARS characters). Response: `{"keywords": [str]}`,
clean and unique, in the order the extractor wrote them. 503 until `flask train kobart` has run.
"""
from __future__ import annotations

from typing import Any, Mapping

from flask import current_app

from app.api import bp
from app.api.validation import json_body, register_schema, text_field
from app.services.registry import models, register_loader


def keywords_schema(config) -> dict:
    """The request schema; its length limit comes from the configuration."""
    return {
        "type": "object",
        "required": ["text"],
        "properties": {"text": text_field(config["MAX_MESSAGE_CHARS"])},
        "additionalProperties": False,
    }


register_schema("keywords", keywords_schema)


@register_loader("keywords")
def load_extractor(config: Mapping[str, Any]):
    """The KoBART keyword extractor that `flask train kobart` wrote to KOBART_MODEL."""
    from kg.extractor import KeywordExtractor

    return KeywordExtractor.from_pretrained(config["KOBART_MODEL"])


@bp.post("/keywords")
def extract_keywords():
    body = json_body(keywords_schema(current_app.config))
    return {"keywords": models().get("keywords").extract(body["text"])}
