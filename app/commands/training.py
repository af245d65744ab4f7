"""What every `flask train X` command shares: a default schedule per model profile, and the
checkpoint training starts from (a configured name/path, or the small profile's own starting
checkpoint, created on first use)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import click
from flask import current_app


@dataclass(frozen=True)
class Schedule:
    epochs: int
    batch_size: int
    lr: float
    early_stop_patience: int


def resolve_base_model(explicit: str | None, base_key: str, small_dirname: str, build: Callable[[Path], None],
                       marker: str = "config.json", rebuild: bool = False) -> str:
    """`explicit` if given; in the `base` profile the configured `base_key`; in the `small` profile
    MODELS_DIR/small_dirname, built by `build(path)` when its `marker` file is missing."""
    config = current_app.config
    if explicit:
        return explicit
    if config["MODEL_PROFILE"] != "small":
        return config[base_key]
    path = Path(config["MODELS_DIR"]) / small_dirname
    if rebuild or not (path / marker).exists():
        build(path)
        click.echo(f"created the small starting checkpoint in {path}")
    return str(path)
