"""`flask prepare`: make a fresh checkout servable (what `make run` calls before starting gunicorn).

Each step runs only when its output is missing, so a second run costs seconds: the database schema,
the bundled corpus, the imported multilingual-e5-small, every model's default training, the index.
"""
from __future__ import annotations

import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from flask_migrate import upgrade
from sqlalchemy import func, select

from app.commands.groups import data_cli, index_cli, models_cli, train_cli
from app.extensions import db
from app.models import Document

# (config key of the model's output directory, `flask train` subcommand), in dependency order.
TRAINED_MODELS = [("CLIP_MODEL", "clip"), ("KOBART_MODEL", "kobart"), ("KOGPT2_MODEL", "kogpt2"),
                  ("REVIEW_MODEL", "review"), ("COREF_MODEL", "coref")]


def _has_model(path: str) -> bool:
    """A saved model directory: anything beyond a resumable checkpoint (models are saved atomically)."""
    directory = Path(path)
    return directory.is_dir() and any(p.name != "checkpoint" for p in directory.iterdir())


def _step(name: str, needed: bool, action) -> float:
    if not needed:
        click.echo(f"[prepare] {name}: present, skipped")
        return 0.0
    click.echo(f"[prepare] {name} ...")
    started = time.perf_counter()
    action()
    seconds = time.perf_counter() - started
    click.echo(f"[prepare] {name}: done in {seconds:.0f} s")
    return seconds


@click.command("prepare")
@with_appcontext
def prepare_command() -> None:
    """Create the database, load the corpus, import/train the default models, build the index."""
    from indexer.versions import current_version

    ctx = click.get_current_context()
    config = current_app.config
    total = 0.0
    total += _step("database schema", True, upgrade)
    has_docs = db.session.scalar(select(func.count()).select_from(Document)) > 0
    total += _step("FAQ corpus", not has_docs, lambda: ctx.invoke(data_cli.get_command(ctx, "load")))
    total += _step("multilingual-e5-small import", not _has_model(config["E5_BASE_MODEL"]),
                   lambda: ctx.invoke(models_cli.get_command(ctx, "import-e5")))
    for key, name in TRAINED_MODELS:
        command = train_cli.get_command(ctx, name)
        if command is None:
            click.echo(f"[prepare] {name}: no `flask train {name}` in this build, skipped")
            continue
        total += _step(f"model {name} -> {config[key]}", not _has_model(config[key]), lambda c=command: ctx.invoke(c))
    total += _step("retrieval index", current_version(Path(config["INDEX_DIR"])) is None,
                   lambda: ctx.invoke(index_cli.get_command(ctx, "build")))
    click.echo(f"[prepare] ready in {total:.0f} s (artifacts under {config['ARTIFACTS_DIR']})")
