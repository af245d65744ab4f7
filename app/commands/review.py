"""`flask train review` and `flask eval review`: the review analyzer (seed 003).

Two architectures, chosen by `--architecture` (default: config REVIEW_ARCHITECTURE):
- `linear` (default): logistic-regression heads over the frozen multilingual-e5-small at
  E5_BASE_MODEL (`--base-model`; `none` trains on the lexical features alone) plus character and
  morpheme TF-IDF. About a minute on two cores.
- `transformer`: two sequence classifiers fine-tuned on the shared loop from `--base-model`, by
  default REVIEW_BASE_MODEL when it is on disk (klue/roberta-base in the seed), else the imported e5,
  else a small RoBERTa created at MODELS_DIR/review-small-base (`--base-model small` forces it).
Both hold out the same 100 reviews (`split_reviews`), which `flask eval review` reports on.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.commands.groups import eval_cli, train_cli
from app.commands.training import Schedule
from app.services.review import ARCHITECTURES, ReviewAnalyzer, load_embedder
from trainers.review import (
    ReviewRecord,
    TransformerTaskSettings,
    build_small_base,
    evaluate,
    read_reviews,
    split_reviews,
    train_linear,
    train_transformer,
    write_run_summary,
)

REVIEWS_FILE = Path("reviews") / "reviews.jsonl"
SMALL_BASE_DIRNAME = "review-small-base"
NO_EMBEDDER = "none"
SMALL_BASE = "small"


# Pretrained encoders fine-tune at the seed's learning-rate scale; a small RoBERTa from random
# weights needs a larger rate and more epochs.
SCHEDULES = {
    "pretrained": Schedule(epochs=4, batch_size=16, lr=1e-4, early_stop_patience=2),
    "small": Schedule(epochs=20, batch_size=16, lr=5e-4, early_stop_patience=4),
}


def _data_path(data: str | None) -> Path:
    return Path(data) if data else Path(current_app.config["DATA_DIR"]) / REVIEWS_FILE


def _load_records(data: str | None) -> list[ReviewRecord]:
    path = _data_path(data)
    if not path.exists():
        raise click.ClickException(f"no reviews at {path}")
    try:
        return read_reviews(path)
    except (KeyError, TypeError, ValueError) as exc:
        raise click.ClickException(f"{path}: {exc}") from exc


def _metrics_line(metrics: dict) -> str:
    return (f"aspects micro-F1 {metrics['aspect_micro_f1']:.3f} macro-F1 {metrics['aspect_macro_f1']:.3f}; "
            f"sentiment accuracy {metrics['sentiment_accuracy']:.3f} macro-F1 {metrics['sentiment_macro_f1']:.3f}; "
            f"highlight accuracy {metrics['highlight_accuracy']:.3f} "
            f"({metrics['n']} reviews, {metrics['n_aspects']} labelled aspects)")


def _linear_embedder(base_model: str | None):
    """(embedder, its path) for the linear path; (None, None) for lexical features only."""
    if base_model == NO_EMBEDDER:
        return None, None
    path = Path(base_model or current_app.config["E5_BASE_MODEL"])
    if not (path / "config.json").exists():
        raise click.ClickException(f"no encoder at {path}: run `flask models import-e5` first "
                                   f"(or `--base-model {NO_EMBEDDER}` for lexical features only)")
    return load_embedder(path), str(path)


def _transformer_base(base_model: str | None, records: list[ReviewRecord]) -> tuple[str, str]:
    """(starting checkpoint, schedule name): the configured pretrained model when it can load here,
    else the imported e5, else a small RoBERTa whose tokenizer learns the training reviews."""
    config = current_app.config
    if base_model and base_model != SMALL_BASE:
        return base_model, "pretrained"
    if base_model != SMALL_BASE:
        configured = config["REVIEW_BASE_MODEL"]
        if Path(configured).is_dir() or config["MODEL_PROFILE"] != "small":
            return configured, "pretrained"
        if (Path(config["E5_BASE_MODEL"]) / "config.json").exists():
            return config["E5_BASE_MODEL"], "pretrained"
    path = Path(config["MODELS_DIR"]) / SMALL_BASE_DIRNAME
    if not (path / "config.json").exists():
        build_small_base(path, [r.text for r in records])
        click.echo(f"created the small RoBERTa starting checkpoint (tokenizer trained on the training reviews) in {path}")
    return str(path), "small"


def _save_swapped(analyzer: ReviewAnalyzer, output: Path) -> None:
    """Write the model beside `output`, then swap it in: a serving worker never reads half a model."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".review-", dir=output.parent))
    old = output.with_name(output.name + ".old")
    try:
        analyzer.save_pretrained(staging)
        shutil.rmtree(old, ignore_errors=True)
        if output.exists():
            os.replace(output, old)
        os.replace(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


@train_cli.command("review")
@click.option("--architecture", type=click.Choice(ARCHITECTURES), default=None,
              help="linear (default: config REVIEW_ARCHITECTURE) or transformer.")
@click.option("--base-model", default=None,
              help=f"linear: frozen encoder directory (default E5_BASE_MODEL; '{NO_EMBEDDER}': lexical only); "
                   f"transformer: starting checkpoint ('{SMALL_BASE}': a small RoBERTa from config).")
@click.option("--epochs", type=int, default=None, help="Transformer: epochs per stage.")
@click.option("--batch-size", type=int, default=None, help="Transformer: examples per step.")
@click.option("--lr", type=float, default=None, help="Transformer: peak learning rate.")
@click.option("--max-steps", type=int, default=None, help="Transformer: cap on steps per epoch (quick runs).")
@click.option("--resume", is_flag=True, help="Transformer: continue both stages from their last checkpoints.")
@click.option("--output", default=None, help="Model directory (default: config REVIEW_MODEL).")
@click.option("--data", default=None, help="reviews.jsonl-style file (default: DATA_DIR/reviews/reviews.jsonl).")
@click.option("--threads", type=int, default=None, help="torch threads (default: every CPU core).")
@with_appcontext
def train_review_command(architecture, base_model, epochs, batch_size, lr, max_steps, resume, output, data,
                         threads) -> None:
    """Train the review analyzer (aspects, sentiment, highlight) on all but the 100 held-out reviews."""
    import torch

    config = current_app.config
    architecture = architecture or config["REVIEW_ARCHITECTURE"]
    torch.set_num_threads(threads or os.cpu_count() or 1)
    records, heldout = split_reviews(_load_records(data))
    output = Path(output or config["REVIEW_MODEL"])
    click.echo(f"review analyzer ({architecture}): {len(records)} training reviews, {len(heldout)} held out "
               f"-> {output}")
    started = time.perf_counter()
    if architecture == "linear":
        if any(v is not None for v in (epochs, batch_size, lr, max_steps)) or resume:
            click.echo("note: --epochs/--batch-size/--lr/--max-steps/--resume apply to the transformer path only")
        embedder, embedder_path = _linear_embedder(base_model)
        analyzer, fit_metrics = train_linear(records, embedder, embedder_path, log=click.echo)
        _save_swapped(analyzer, output)
        run = {"base_model": embedder_path}
    else:
        base, schedule_name = _transformer_base(base_model, records)
        schedule = SCHEDULES[schedule_name]
        from trainers.loop import TrainConfig

        def stage_config(stage: str) -> TrainConfig:
            return TrainConfig(output_dir=str(output / stage), epochs=epochs or schedule.epochs,
                               batch_size=batch_size or schedule.batch_size, lr=lr or schedule.lr,
                               early_stop_patience=schedule.early_stop_patience, resume=resume,
                               max_steps_per_epoch=max_steps)

        settings = TransformerTaskSettings(base_model=base)
        analyzer, fit_metrics = train_transformer(records, settings, stage_config("aspect"),
                                                  stage_config("sentiment"), log=click.echo)
        analyzer.save_pretrained(output)
        run = {"base_model": base, "schedule": asdict(schedule)}
    seconds = time.perf_counter() - started
    click.echo(f"trained in {seconds:.0f} s; evaluating on the {len(heldout)} held-out reviews ...")
    metrics = evaluate(analyzer, heldout)
    write_run_summary(output, {"architecture": architecture, **run, "train_seconds": round(seconds, 1),
                               "n_train": len(records), "fit": fit_metrics, "heldout": metrics})
    click.echo(_metrics_line(metrics))
    click.echo(f"wrote the review model to {output} (review.json, training.json"
               + (", linear.joblib)" if architecture == "linear" else ", aspect/, sentiment/ with loss.png)"))


@eval_cli.command("review")
@click.option("--data", default=None, help="Evaluate on every review of this file (default: the 100 held-out reviews).")
@click.option("--model", default=None, help="Model directory (default: config REVIEW_MODEL).")
@click.option("--threads", type=int, default=None, help="torch threads (default: every CPU core).")
@with_appcontext
def eval_review_command(data, model, threads) -> None:
    """Aspect micro/macro-F1, sentiment accuracy/macro-F1 and highlight accuracy; last line JSON."""
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)
    records = _load_records(data) if data else split_reviews(_load_records(None))[1]
    path = Path(model or current_app.config["REVIEW_MODEL"])
    try:
        analyzer = ReviewAnalyzer.from_pretrained(path)
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"review analyzer ({analyzer.architecture}) from {path} on "
               f"{'every review of ' + data if data else 'the held-out reviews'}")
    metrics = evaluate(analyzer, records, log=click.echo)
    click.echo(_metrics_line(metrics))
    click.echo(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}))
