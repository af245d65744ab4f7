"""Glue between the Flask app and the retrieval pipeline: the per-process index holder, the keyword
function and the fallback generator, each built from the app's configuration."""
from __future__ import annotations

import logging
from pathlib import Path

from flask import Flask, current_app

from app.errors import ApiError
from app.services.fallback import safe_fallback_reply  # also registers the "fallback" model loader
from app.services.index import IndexHolder
from app.services.pipeline import HybridRetriever, RetrievalIndex, RetrievalSettings
from app.services.registry import models

log = logging.getLogger(__name__)


def init_index(app: Flask) -> IndexHolder:
    threads = app.config["TORCH_THREADS"]
    holder = IndexHolder(Path(app.config["INDEX_DIR"]), lambda path: RetrievalIndex.load(path, threads),
                         app.config["INDEX_RELOAD_SECONDS"])
    app.extensions["index"] = holder
    return holder


def retrieval_settings(config) -> RetrievalSettings:
    return RetrievalSettings(depth=config["RETRIEVAL_DEPTH"], fusion=config["FUSION_METHOD"])


def keyword_function():
    """Keywords for the graph: kiwipiepy noun compounds and their parts (`kg.graph.query_terms`).

    Measured (graph top-1, held-out / dev / hard): query_terms 0.57 / 0.73 / 0.08 against 0.38 / 0.46 /
    0.03 with the KoBART extractor's ~4 keywords; the graph needs recall. The extractor serves
    `/api/v1/keywords`.
    """
    from kg.graph import query_terms

    return query_terms


def retriever_for_request(keyword_fn) -> HybridRetriever:
    index = current_app.extensions["index"].get()
    return HybridRetriever(index, keyword_fn, retrieval_settings(current_app.config))


def fallback_reply(message: str, suggestions: list[str]) -> str:
    """A checked small-talk reply from the generator, or the polite pointer to 125 and the FAQs."""
    try:
        generator = models().get("fallback")
    except ApiError:
        return safe_fallback_reply(message, suggestions)
    reply = generator.reply(message)
    return reply.text if reply.usable else safe_fallback_reply(message, suggestions)
