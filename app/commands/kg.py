"""`flask train kobart` and `flask eval keywords`: the keyword extractor (seed 002).

The base model is KOBART_BASE_MODEL in the `base` profile (gogamza/kobart-base-v1 or a local copy);
in the `small` profile it is a small BART created once at MODELS_DIR/kobart-small-base (tokenizer and
denoising pre-training on the training split's FAQ text). Both go through the same fine-tuning on
(question or paraphrase -> keywords) pairs, validated on the held-out paraphrases.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict
from pathlib import Path

import click
import torch
from flask import current_app
from flask.cli import with_appcontext

from app.commands.groups import eval_cli, train_cli
from app.commands.training import Schedule
from app.corpus import faq_records
from kg.extractor import SETTINGS_FILE, KeywordExtractor, load_settings, score_keywords
from kg.graph import query_terms
from kg.normalize import nouns
from trainers.data import FaqRecord, heldout_split
from trainers.kobart import build_small_base, corpus_sentences, extract_all, keyword_pairs, train_extractor
from trainers.loop import TrainConfig

SMALL_BASE_DIRNAME = "kobart-small-base"
EVAL_SAMPLES_SHOWN = 8


# small: random weights need a large learning rate; keyword F1 on held-out paraphrases levels off
# after ~10 epochs (measured: 12 epochs 0.417, 20 epochs 0.423, greedy decoding), about two minutes
# with the denoising pre-training on two CPU cores. base: the seed's fine-tuning of KoBART (lr 3e-5).
SCHEDULES = {
    "small": Schedule(epochs=12, batch_size=16, lr=1e-3, early_stop_patience=4),
    "base": Schedule(epochs=3, batch_size=8, lr=3e-5, early_stop_patience=2),
}
# Denoising epochs of the small base: fine-tuning from it reaches F1 0.39 in 5 epochs, from random
# weights 0.35.
PRETRAIN_SCHEDULE = Schedule(epochs=3, batch_size=16, lr=1e-3, early_stop_patience=3)


def _training_records() -> tuple[list[FaqRecord], list]:
    records = faq_records()
    if not records:
        raise click.ClickException("no FAQ documents in the database: run `flask data load` first")
    return heldout_split(records)


def _base_model(base_model: str | None, train_records: list[FaqRecord], pretrain_epochs: int,
                rebuild: bool, device: str) -> str:
    """The checkpoint to fine-tune; in the small profile it is built on first use."""
    config = current_app.config
    if base_model:
        return base_model
    if config["MODEL_PROFILE"] != "small":
        return config["KOBART_BASE_MODEL"]
    path = Path(config["MODELS_DIR"]) / SMALL_BASE_DIRNAME
    if rebuild or not (path / SETTINGS_FILE).exists():
        texts = corpus_sentences(train_records)
        click.echo(f"building the small BART starting checkpoint: tokenizer + {pretrain_epochs} epochs of "
                   f"denoising on {len(texts)} sentences of the training split -> {path}")
        build_small_base(texts, path, TrainConfig(
            output_dir=str(path), epochs=pretrain_epochs, batch_size=PRETRAIN_SCHEDULE.batch_size,
            lr=PRETRAIN_SCHEDULE.lr, early_stop_patience=PRETRAIN_SCHEDULE.early_stop_patience, device=device,
        ), log=click.echo)
    return str(path)


@train_cli.command("kobart")
@click.option("--base-model", default=None,
              help="BART checkpoint to fine-tune (name or path); default per MODEL_PROFILE.")
@click.option("--epochs", type=int, default=None, help="Default: the profile's schedule.")
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--resume", is_flag=True, help="Continue fine-tuning from <output>/checkpoint.")
@click.option("--output", default=None, help="Model directory (default: config KOBART_MODEL).")
@click.option("--pretrain-epochs", type=int, default=PRETRAIN_SCHEDULE.epochs, show_default=True,
              help="Small profile: denoising epochs when the small base is built.")
@click.option("--rebuild-base", is_flag=True, help="Small profile: build the small base again.")
@click.option("--early-stop-patience", type=int, default=None)
@click.option("--max-steps-per-epoch", type=int, default=None)
@click.option("--device", default="auto", show_default=True)
@click.option("--threads", type=int, default=None, help="torch threads (default: every CPU core).")
@with_appcontext
def train_kobart(base_model, epochs, batch_size, lr, resume, output, pretrain_epochs, rebuild_base,
                 early_stop_patience, max_steps_per_epoch, device, threads) -> None:
    """Fine-tune the keyword extractor on every FAQ question and paraphrase with its keyword list."""
    torch.set_num_threads(threads or os.cpu_count() or 1)
    config = current_app.config
    started = time.perf_counter()
    train_records, heldout = _training_records()
    base = _base_model(base_model, train_records, pretrain_epochs, rebuild_base, device)
    # A base that reads morpheme-split text is one of ours, built small from random weights.
    schedule = SCHEDULES["small" if load_settings(base).presegment else "base"]
    pairs = keyword_pairs(train_records)
    output_dir = Path(output or config["KOBART_MODEL"])
    click.echo(f"fine-tuning {base} on {len(pairs)} (text -> keywords) pairs, validating on "
               f"{len(heldout)} held-out paraphrases")
    train_config = TrainConfig(
        output_dir=str(output_dir), epochs=epochs or schedule.epochs, batch_size=batch_size or schedule.batch_size,
        lr=lr or schedule.lr, early_stop_patience=early_stop_patience or schedule.early_stop_patience,
        device=device, resume=resume, max_steps_per_epoch=max_steps_per_epoch,
    )
    train_extractor(base, pairs, heldout, train_config, log=click.echo)
    click.echo(f"trained in {time.perf_counter() - started:.0f} s; extractor in {output_dir} "
               f"(load with KeywordExtractor.from_pretrained; `flask eval keywords` reports it)")


@eval_cli.command("keywords")
@click.option("--model", default=None, help="Extractor directory (default: config KOBART_MODEL).")
@click.option("--beams", type=int, default=None, help="Beam width (default: the extractor's own).")
@with_appcontext
def eval_keywords(model, beams) -> None:
    """Keyword precision/recall/F1 on the held-out paraphrases: the extractor against two kiwipiepy
    baselines, the nouns of the text and the nouns plus each word's noun compound (`query_terms`)."""
    model_dir = Path(model or current_app.config["KOBART_MODEL"])
    _, heldout = _training_records()
    heldout = [q for q in heldout if q.keywords]
    texts, gold = [q.text for q in heldout], [q.keywords for q in heldout]
    extractor = KeywordExtractor.from_pretrained(model_dir)
    started = time.perf_counter()
    predicted = extract_all(extractor, texts, batch_size=1, num_beams=beams)
    latency_ms = (time.perf_counter() - started) * 1000 / max(1, len(texts))
    results = {"model": score_keywords(predicted, gold),
               "nouns": score_keywords([nouns(t) for t in texts], gold),
               "noun_compounds": score_keywords([query_terms(t) for t in texts], gold)}
    click.echo(f"model {model_dir}; {len(texts)} held-out paraphrases; {latency_ms:.1f} ms per query")
    for text, pred, ref in list(zip(texts, predicted, gold))[:EVAL_SAMPLES_SHOWN]:
        click.echo(f"  {text} -> {', '.join(pred)}   [gold: {', '.join(ref)}]")
    for name, s in results.items():
        click.echo(f"{name:>15}: keyword P/R/F1 {s.keyword_precision:.3f}/{s.keyword_recall:.3f}/{s.keyword_f1:.3f}"
                   f"  morpheme P/R/F1 {s.morpheme_precision:.3f}/{s.morpheme_recall:.3f}/{s.morpheme_f1:.3f}")
    metrics = {"n": len(texts), "latency_ms": round(latency_ms, 2),
               **{f"{name}_{k}": round(v, 4) for name, s in results.items() for k, v in asdict(s).items()}}
    click.echo(json.dumps(metrics, ensure_ascii=False))
