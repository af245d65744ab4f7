"""The Flask application factory: the one place the app is assembled."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

from flask import Flask

from config import Config, config_for


def create_app(config: type[Config] | Mapping[str, Any] | None = None) -> Flask:
    """Build the app from a config class (default: APP_ENV's) or, in tests, a mapping of overrides."""
    app = Flask(__name__, instance_relative_config=False)
    if config is None or isinstance(config, type):
        app.config.from_object(config or config_for())
    else:
        app.config.from_object(config_for("testing"))
        app.config.update(config)
    _configure_logging(app.config["LOG_LEVEL"])
    _ensure_sqlite_dir(app.config["SQLALCHEMY_DATABASE_URI"])
    app.json.ensure_ascii = False
    app.json.sort_keys = False

    from app.extensions import db, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.config.get("MIGRATIONS_DIR") or _migrations_dir()))

    from app import models  # noqa: F401  (tables known to SQLAlchemy and Alembic)
    from app.errors import register_error_handlers
    from app.services.registry import ModelRegistry

    from app.services.retrieval import init_index

    register_error_handlers(app)
    app.extensions["models"] = ModelRegistry(app.config)
    init_index(app)

    from app.api import bp as api_bp
    from app.health import bp as health_bp
    from app.web import bp as web_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(web_bp)

    from app.commands import register_commands

    register_commands(app)
    return app


def warm_up(app: Flask) -> dict[str, str]:
    """Load every model and the current index now rather than on the first request."""
    import torch

    torch.set_num_threads(app.config["TORCH_THREADS"])
    with app.app_context():
        status = app.extensions["models"].warm_up()
        try:
            app.extensions["index"].get()
            status["index"] = app.extensions["index"].version or "none"
        except Exception as exc:  # noqa: BLE001 - served as 503 until an index is built
            status["index"] = f"unavailable: {exc}"
    logging.getLogger(__name__).info("warm-up: %s", status)
    return status


def _ensure_sqlite_dir(uri: str) -> None:
    """SQLite creates the database file but not its folder (the default lives under instance/)."""
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)


def _migrations_dir() -> str:
    from config import ROOT

    return str(ROOT / "migrations")


def _configure_logging(level: str) -> None:
    """Structured-enough logs: time, level, logger, message; Alembic's plugin chatter muted."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
