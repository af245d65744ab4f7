"""The shared training loop: loss falls, checkpoints resume exactly, early stopping, run files."""
from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import TensorDataset

from trainers.loop import TrainConfig, train


class LinearTask:
    """Fit y = 3x - 1; validation loss is the selection metric."""

    selection_metric = "val_loss"
    higher_is_better = False

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 1, generator=g)
        self.data = TensorDataset(x, 3 * x - 1)
        self.val_x = torch.linspace(-1, 1, 16).unsqueeze(1)
        self.model = nn.Linear(1, 1)
        self.saved: list[Path] = []

    def train_dataset(self):
        return self.data

    def collate(self, items):
        xs, ys = zip(*items)
        return torch.stack(xs), torch.stack(ys)

    def loss(self, model, batch):
        x, y = batch
        return nn.functional.mse_loss(model(x), y)

    def evaluate(self):
        pred = self.model(self.val_x)
        return {"val_loss": nn.functional.mse_loss(pred, 3 * self.val_x - 1).item()}

    def save(self, path: Path):
        path.mkdir(parents=True, exist_ok=True)
        torch.save(self.model.state_dict(), path / "model.pt")
        self.saved.append(path)


def test_loss_falls_and_run_files_are_written(tmp_path):
    task = LinearTask()
    history = train(task, TrainConfig(output_dir=str(tmp_path / "m"), epochs=4, batch_size=8, lr=0.1,
                                      warmup_ratio=0.0), log=lambda *_: None)
    assert history[-1]["val_loss"] < history[0]["val_loss"] / 2
    out = tmp_path / "m"
    for name in ("model.pt", "train_config.json", "history.json", "loss.png", "checkpoint/state.pt"):
        assert (out / name).exists(), name
    assert json.loads((out / "train_config.json").read_text())["epochs"] == 4


def test_resume_continues_from_the_saved_epoch(tmp_path):
    out = str(tmp_path / "m")
    train(LinearTask(), TrainConfig(output_dir=out, epochs=2, batch_size=8, lr=0.05), log=lambda *_: None)
    logs: list[str] = []
    history = train(LinearTask(), TrainConfig(output_dir=out, epochs=4, batch_size=8, lr=0.05, resume=True),
                    log=logs.append)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    assert any("resuming" in line and "epoch 3" in line for line in logs)


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path):
    task = LinearTask()
    task.evaluate = lambda: {"val_loss": 1.0}  # never improves after the first epoch
    logs: list[str] = []
    history = train(task, TrainConfig(output_dir=str(tmp_path / "m"), epochs=10, early_stop_patience=2),
                    log=logs.append)
    assert len(history) == 3
    assert any("early stop" in line for line in logs)
