"""Lazily loaded, process-wide models, by name.

Each model registers a loader `config -> object`. The first request that needs a model loads it (or
`warm_up` loads them all at start-up, so gunicorn's preloading shares the weights between workers);
a model whose files are missing makes the endpoints that need it answer 503, not 500.
"""
from __future__ import annotations

import logging
import threading
from typing import Any, Callable, Mapping

from flask import current_app

from app.errors import ApiError

log = logging.getLogger(__name__)

Loader = Callable[[Mapping[str, Any]], Any]
LOADERS: dict[str, Loader] = {}


def register_loader(name: str) -> Callable[[Loader], Loader]:
    """Decorator: `@register_loader("review")` on a function that builds the model from config."""

    def decorate(fn: Loader) -> Loader:
        LOADERS[name] = fn
        return fn

    return decorate


class ModelRegistry:
    def __init__(self, config: Mapping[str, Any]):
        self.config = config
        self._models: dict[str, Any] = {}
        self._errors: dict[str, str] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> Any:
        """The loaded model `name`; raises ApiError 503 when it cannot be loaded."""
        if name in self._models:
            return self._models[name]
        # One process-wide lock for every model construction: transformers patches process-wide
        # state while it builds a model, so two threads loading at once can corrupt one of them.
        from indexer.encoder import MODEL_LOAD_LOCK

        with self._lock, MODEL_LOAD_LOCK:
            if name not in self._models:
                try:
                    self._models[name] = LOADERS[name](self.config)
                    self._errors.pop(name, None)
                    log.info("loaded model %s", name)
                except Exception as exc:  # noqa: BLE001 - reported as 503 and in /readyz
                    self._errors[name] = f"{type(exc).__name__}: {exc}"
                    log.warning("model %s not available: %s", name, exc)
                    raise ApiError(503, f"model '{name}' is not available; run its `flask train` command") from exc
        return self._models[name]

    def set(self, name: str, model: Any) -> None:
        """Install an already built model (tests, or a hot swap)."""
        with self._lock:
            self._models[name] = model

    def warm_up(self) -> dict[str, str]:
        """Try to load every registered model; returns {name: "ok" | error}."""
        status = {}
        for name in LOADERS:
            try:
                self.get(name)
                status[name] = "ok"
            except ApiError:
                status[name] = self._errors.get(name, "unavailable")
        return status

    def status(self) -> dict[str, str]:
        return {name: ("ok" if name in self._models else self._errors.get(name, "not loaded")) for name in LOADERS}


def models() -> ModelRegistry:
    """The current app's model registry."""
    return current_app.extensions["models"]
