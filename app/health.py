"""Liveness and readiness probes (outside /api/v1: they describe the process, not the API)."""
from __future__ import annotations

from flask import Blueprint, current_app
from sqlalchemy import text

from app.errors import ApiError
from app.extensions import db
from app.services.registry import models

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """The process is up and serving requests."""
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    """Ready when the database answers and the models and index are loaded (503 otherwise)."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any database failure means not ready
        raise ApiError(503, f"database unavailable: {type(exc).__name__}") from exc
    status = models().status() if current_app.config["LOAD_MODELS"] else {}
    not_ready = {name: state for name, state in status.items() if state != "ok"}
    body = {"status": "ready" if not not_ready else "not_ready", "database": "ok", "models": status}
    return body, (200 if not not_ready else 503)
