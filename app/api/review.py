"""`POST /api/v1/review`: the aspects a product review rates, each with its sentiment and highlight.

Request: `{"text": str}` (at most REVIEW_MAX_CHARS characters).
Response: `{"aspects": [{"aspect", "sentiment" (-2..2), "probability", "highlight"}]}`, most probable
aspect first; `highlight` is the review's word (eojeol) that shows the aspect.
"""
from __future__ import annotations

from flask import current_app

from app.api import bp
from app.api.validation import json_body, register_schema, text_field
from app.services.registry import models
from app.services.review import AspectResult  # importing it registers the "review" model loader

PROBABILITY_DECIMALS = 4


def review_schema(config) -> dict:
    """The request schema; its length limit comes from the configuration."""
    return {
        "type": "object",
        "required": ["text"],
        "properties": {"text": text_field(config["REVIEW_MAX_CHARS"])},
        "additionalProperties": False,
    }


register_schema("review", review_schema)


@bp.post("/review")
def analyze_review():
    body = json_body(review_schema(current_app.config))
    return {"aspects": [_as_json(result) for result in models().get("review").analyze(body["text"])]}


def _as_json(result: AspectResult) -> dict:
    return {"aspect": result.aspect, "sentiment": result.sentiment,
            "probability": round(result.probability, PROBABILITY_DECIMALS), "highlight": result.highlight}
