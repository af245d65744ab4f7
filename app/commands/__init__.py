"""Admin commands (`flask data|models|train|eval|index ...`): one module per area, on shared groups."""
from __future__ import annotations

import importlib

from flask import Flask

from app.commands.groups import GROUPS

# Modules that attach commands to the groups when imported: one entry per module.
COMMAND_MODULES: list[str] = [
    "data",
    "feedback",
    "dense",
    "index",
    "evaluate",
    "coref",
    "kogpt2",
    "review",
    "kg",
]


def register_commands(app: Flask) -> None:
    for module in COMMAND_MODULES:
        importlib.import_module(f"app.commands.{module}")
    for group in GROUPS:
        app.cli.add_command(group)
    from app.commands.prepare import prepare_command

    app.cli.add_command(prepare_command)
