"""`flask train kogpt2` and `flask eval kogpt2`: the chit-chat fallback generator (seed 004).

The base model is KOGPT2_BASE_MODEL in the `base` profile (e.g. skt/kogpt2-base-v2 on disk); in the
`small` profile it is a small GPT-2 created once at MODELS_DIR/kogpt2-small-base (tokenizer trained on
the training split's chit-chat text). Both go through the same trainer.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from app.commands.groups import eval_cli, train_cli
from app.commands.training import Schedule, resolve_base_model
from app.services.fallback import ChitChatGenerator
from trainers.kogpt2 import (
    LABEL_DROPOUT,
    SPLIT_SEED,
    VAL_FRACTION,
    ChitChatTask,
    build_small_base,
    evaluate_generator,
    problem_counts,
    read_chitchat,
    split_chitchat,
)
from trainers.loop import TrainConfig, train

SMALL_BASE_DIRNAME = "kogpt2-small-base"
CHITCHAT_FILE = Path("chitchat") / "chitchat.jsonl"
EVAL_SAMPLES_SHOWN = 10


# small, from random weights (measured on the 80 held-out pairs, one CPU thread): 16 epochs (early
# stop at 13) 80 s, reply F1 0.091, distinct-2 0.70; 20 epochs 120 s, F1 0.097, distinct-2 0.91;
# 30 epochs 170 s, F1 0.104, distinct-2 0.93 but a quarter of the replies are training answers verbatim.
# base: the seed's fine-tuning learning rate for the pretrained KoGPT2.
SCHEDULES = {
    "small": Schedule(epochs=20, batch_size=16, lr=1e-3, early_stop_patience=4),
    "base": Schedule(epochs=5, batch_size=32, lr=5e-5, early_stop_patience=2),
}


def _data_path(data: str | None) -> Path:
    return Path(data) if data else Path(current_app.config["DATA_DIR"]) / CHITCHAT_FILE


def _base_model(base_model: str | None, train_texts: list[str]) -> str:
    """The checkpoint training starts from (small profile: a GPT-2 with a chit-chat tokenizer)."""
    return resolve_base_model(base_model, "KOGPT2_BASE_MODEL", SMALL_BASE_DIRNAME,
                              lambda path: build_small_base(path, train_texts))


@train_cli.command("kogpt2")
@click.option("--base-model", default=None, help="Base checkpoint (name or path); default per MODEL_PROFILE.")
@click.option("--epochs", type=int, default=None, help="Default: the profile's schedule.")
@click.option("--batch-size", type=int, default=None)
@click.option("--lr", type=float, default=None)
@click.option("--resume", is_flag=True, help="Continue from <output>/checkpoint.")
@click.option("--output", default=None, help="Model directory (default: config KOGPT2_MODEL).")
@click.option("--data", default=None, help="Chit-chat JSON Lines (default: DATA_DIR/chitchat/chitchat.jsonl).")
@click.option("--val-fraction", type=float, default=VAL_FRACTION, show_default=True)
@click.option("--label-dropout", type=float, default=LABEL_DROPOUT, show_default=True,
              help="Share of pairs shown without their sentiment label.")
@click.option("--early-stop-patience", type=int, default=None, help="Epochs without improvement before stopping.")
@click.option("--max-steps-per-epoch", type=int, default=None)
@click.option("--device", default="auto", show_default=True)
@with_appcontext
def train_kogpt2(base_model, epochs, batch_size, lr, resume, output, data, val_fraction, label_dropout,
                 early_stop_patience, max_steps_per_epoch, device) -> None:
    """Fine-tune the chit-chat generator (`<usr> q <sent> label <sys> a </s>`, loss on answers only)."""
    config = current_app.config
    schedule = SCHEDULES["small" if config["MODEL_PROFILE"] == "small" else "base"]
    pairs = read_chitchat(_data_path(data))
    train_pairs, val_pairs = split_chitchat(pairs, val_fraction)
    base = _base_model(base_model, [t for p in train_pairs for t in (p.question, p.answer)])
    output_dir = Path(output or config["KOGPT2_MODEL"])
    click.echo(f"training on {len(train_pairs)} pairs, validating on {len(val_pairs)}, from {base}")
    task = ChitChatTask(base, train_pairs, val_pairs, label_dropout)
    train_config = TrainConfig(
        output_dir=str(output_dir), epochs=epochs or schedule.epochs, batch_size=batch_size or schedule.batch_size,
        lr=lr or schedule.lr, early_stop_patience=early_stop_patience or schedule.early_stop_patience,
        device=device, resume=resume, max_steps_per_epoch=max_steps_per_epoch,
        task={"base_model": base, "val_fraction": val_fraction, "split_seed": SPLIT_SEED,
              "label_dropout": label_dropout, "train_pairs": len(train_pairs), "val_pairs": len(val_pairs)},
    )
    started = time.perf_counter()
    train(task, train_config, log=click.echo)
    click.echo(f"trained in {time.perf_counter() - started:.0f} s; generator in {output_dir} "
               f"(load with ChitChatGenerator.from_pretrained)")


@eval_cli.command("kogpt2")
@click.option("--model", default=None, help="Model directory (default: config KOGPT2_MODEL).")
@click.option("--data", default=None, help="Chit-chat JSON Lines (default: DATA_DIR/chitchat/chitchat.jsonl).")
@click.option("--val-fraction", type=float, default=VAL_FRACTION, show_default=True,
              help="Must match training: the same seeded split gives the same held-out pairs.")
@click.option("--samples", "samples_out", default=None, help="Write every generated reply to this JSON Lines file.")
@with_appcontext
def eval_kogpt2(model, data, val_fraction, samples_out) -> None:
    """Validation loss/perplexity and reply quality on the held-out chit-chat pairs."""
    model_dir = Path(model or current_app.config["KOGPT2_MODEL"])
    train_pairs, val_pairs = split_chitchat(read_chitchat(_data_path(data)), val_fraction)
    generator = ChitChatGenerator.from_pretrained(model_dir)
    metrics, samples = evaluate_generator(generator, val_pairs, train_pairs)
    click.echo(f"model {model_dir}; {len(val_pairs)} held-out pairs; replies generated with the label omitted")
    for sample in samples[:EVAL_SAMPLES_SHOWN]:
        shown = sample["generated"] if sample["usable"] else f"(unusable: {'; '.join(sample['problems'])})"
        click.echo(f"  {sample['question']} -> {shown}   [reference: {sample['reference']}]")
    counts = problem_counts(samples)
    if counts:
        click.echo("failed checks: " + ", ".join(f"{code} {n}" for code, n in counts.most_common()))
    if samples_out:
        Path(samples_out).write_text("".join(json.dumps(s, ensure_ascii=False) + "\n" for s in samples),
                                     encoding="utf-8")
        click.echo(f"wrote {len(samples)} samples to {samples_out}")
    click.echo(json.dumps(metrics, ensure_ascii=False))
