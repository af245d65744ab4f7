"""The one training loop every model shares (read it top to bottom, like nanoGPT's `train.py`).

A model-specific *task* says what a batch is and how to score the model; this loop does the rest:
device selection, AdamW with linear warm-up and decay, gradient clipping, tqdm progress, evaluation
every epoch, early stopping (the seed's `early_stop_criterion`), a checkpoint every epoch that
`resume=True` continues from exactly (model, optimizer, scheduler, epoch, loss history), the run's
`train_config.json` next to the model, and a loss-curve PNG.

Output directory layout (all writes are atomic: a crash leaves the previous files intact):

    <output_dir>/              best model so far, written by `task.save` (save_pretrained)
    <output_dir>/train_config.json   the TrainConfig and the task's own settings (seed: {model_name}.json;
                               not `config.json`, which is the Hugging Face model's own)
    <output_dir>/history.json  per-epoch train loss and validation metrics
    <output_dir>/loss.png      loss curves
    <output_dir>/checkpoint/state.pt   last epoch's full training state, for `resume`

Runs unchanged under `torchrun --nproc_per_node N`: with WORLD_SIZE > 1 the model is wrapped in
DistributedDataParallel, each rank sees its shard of the data, and only rank 0 evaluates and writes.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, RandomSampler
from tqdm.auto import tqdm

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.pt"
RUN_CONFIG_FILE = "train_config.json"


@dataclass
class TrainConfig:
    """Hyper-parameters of one run; every trainer's CLI fills these from its options."""

    output_dir: str
    epochs: int = 3
    batch_size: int = 16
    lr: float = 3e-5
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    grad_clip: float = 1.0
    # Stop when the selection metric has not improved for this many epochs (seed: early_stop_criterion).
    early_stop_patience: int = 3
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    resume: bool = False
    # Cap on optimizer steps per epoch (tests and quick runs); None = the whole data set.
    max_steps_per_epoch: int | None = None
    task: dict[str, Any] = field(default_factory=dict)


class Task(Protocol):
    """What a model brings to the loop. `model` is the nn.Module being trained."""

    model: nn.Module
    # Name of the validation metric used for early stopping and best-model selection.
    selection_metric: str
    # True when a larger selection metric is better (accuracy), False for losses.
    higher_is_better: bool

    def train_dataset(self) -> Dataset: ...

    def collate(self, items: list[Any]) -> Any: ...

    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """Training loss of `batch` (model may be DDP-wrapped: call it, don't reach inside)."""

    def evaluate(self) -> dict[str, float]:
        """Validation metrics on data the model never trains on; must include selection_metric."""

    def save(self, path: Path) -> None:
        """Write the model so that its own `from_pretrained`-style loader reads it back."""


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' requested but CUDA is not available")
    return torch.device(requested)


def _distributed() -> tuple[int, int]:
    """(rank, world_size); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _atomic_write_text(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, encoding="utf-8") as fh:
        fh.write(text)
    os.replace(fh.name, path)


def save_model_atomically(task: Task, output_dir: Path) -> None:
    """`task.save` into a sibling temp dir, then swap it in, keeping checkpoint/ and run files."""
    tmp = Path(tempfile.mkdtemp(prefix=".saving-", dir=output_dir.parent))
    try:
        task.save(tmp)
        for name in (CHECKPOINT_DIR, RUN_CONFIG_FILE, "history.json", "loss.png"):
            if (output_dir / name).exists() and not (tmp / name).exists():
                os.replace(output_dir / name, tmp / name)
        old = output_dir.with_name(output_dir.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if output_dir.exists():
            os.replace(output_dir, old)
        os.replace(tmp, output_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def plot_history(history: list[dict[str, float]], path: Path) -> None:
    """Loss curves (train loss, and validation loss when the task reports one) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["train_loss"] for h in history], marker="o", label="train loss")
    if all("val_loss" in h for h in history):
        ax.plot(epochs, [h["val_loss"] for h in history], marker="o", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, path)


def _loader(task: Task, cfg: TrainConfig, epoch: int, rank: int, world: int) -> DataLoader:
    dataset = task.train_dataset()
    generator = torch.Generator().manual_seed(cfg.seed + epoch)
    if world > 1:
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=cfg.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(dataset, generator=generator)
    return DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, collate_fn=task.collate)


def _is_better(task: Task, value: float, best: float | None) -> bool:
    if best is None:
        return True
    return value > best if task.higher_is_better else value < best


def train(task: Task, cfg: TrainConfig, log=print) -> list[dict[str, float]]:
    """Train `task.model` per `cfg`; returns the per-epoch history. The best model ends in output_dir."""
    rank, world = _distributed()
    device = pick_device(cfg.device)
    if world > 1 and device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.manual_seed(cfg.seed)
    output_dir = Path(cfg.output_dir)
    ckpt_path = output_dir / CHECKPOINT_DIR / STATE_FILE
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / CHECKPOINT_DIR).mkdir(exist_ok=True)

    model = task.model.to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(task.train_dataset()) / (cfg.batch_size * world))
    if cfg.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, cfg.max_steps_per_epoch)
    total_steps = max(1, steps_per_epoch * cfg.epochs)
    warmup = int(total_steps * cfg.warmup_ratio)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / max(1, warmup), max(0.0, (total_steps - step) / max(1, total_steps - warmup))),
    )

    history: list[dict[str, float]] = []
    best: float | None = None
    start_epoch, stale = 0, 0
    if cfg.resume:
        if not ckpt_path.exists():
            raise FileNotFoundError(f"nothing to resume: {ckpt_path} does not exist")
        state = torch.load(ckpt_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, best, stale = state["history"], state["best"], state["stale"]
        start_epoch = state["epoch"] + 1
        log(f"resuming from {ckpt_path} at epoch {start_epoch + 1}")

    wrapped = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    if rank == 0:
        _atomic_write_text(output_dir / RUN_CONFIG_FILE, json.dumps(asdict(cfg), ensure_ascii=False, indent=2))

    for epoch in range(start_epoch, cfg.epochs):
        if stale >= cfg.early_stop_patience:
            break
        wrapped.train()
        losses: list[float] = []
        batches: Iterable = _loader(task, cfg, epoch, rank, world)
        bar = tqdm(batches, total=steps_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=rank != 0)
        for step, batch in enumerate(bar):
            if step >= steps_per_epoch:
                break
            loss = task.loss(wrapped, _to_device(batch, device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{sum(losses[-20:]) / len(losses[-20:]):.4f}")

        if rank == 0:
            model.eval()
            with torch.no_grad():
                metrics = task.evaluate()
            record = {"epoch": epoch + 1, "train_loss": sum(losses) / max(1, len(losses)), **metrics}
            history.append(record)
            value = metrics[task.selection_metric]
            improved = _is_better(task, value, best)
            best, stale = (value, 0) if improved else (best, stale + 1)
            log(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in record.items())
                + (" (best)" if improved else ""))
            if improved:
                save_model_atomically(task, output_dir)
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "scheduler": scheduler.state_dict(), "epoch": epoch, "history": history,
                     "best": best, "stale": stale, "config": asdict(cfg)}
            tmp_ckpt = ckpt_path.with_suffix(".tmp")
            torch.save(state, tmp_ckpt)
            os.replace(tmp_ckpt, ckpt_path)
            _atomic_write_text(output_dir / "history.json", json.dumps(history, ensure_ascii=False, indent=2))
            plot_history(history, output_dir / "loss.png")
        if world > 1:  # every rank must agree on early stopping, which only rank 0 decides
            flag = torch.tensor([stale], device=device)
            torch.distributed.broadcast(flag, src=0)
            stale = int(flag.item())

    if rank == 0:
        if stale >= cfg.early_stop_patience:
            log(f"early stop: {task.selection_metric} did not improve for {stale} epochs")
        log(f"best {task.selection_metric}={best} -> model in {output_dir}, "
            f"loss curve {output_dir / 'loss.png'}, history {output_dir / 'history.json'}")
    return history
