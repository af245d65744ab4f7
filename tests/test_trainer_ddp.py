"""The shared loop runs unchanged under torchrun with DistributedDataParallel (gloo on CPU)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_two_process_training_under_torchrun(tmp_path):
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        from tests.test_trainer_loop import LinearTask
        from trainers.loop import TrainConfig, train
        train(LinearTask(), TrainConfig(output_dir={str(tmp_path / 'm')!r}, epochs=3, batch_size=8, lr=0.1,
                                        warmup_ratio=0.0, device="cpu"))
    """))
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True, text=True, timeout=180, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    history = json.loads((tmp_path / "m" / "history.json").read_text())
    assert len(history) == 3 and history[-1]["val_loss"] < history[0]["val_loss"]
