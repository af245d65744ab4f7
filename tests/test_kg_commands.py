"""`flask train kobart` (small profile: base built, then fine-tuned) and `flask eval keywords`."""
from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import DATA_DIR

FAQ_SAMPLE = 4


def _load_sample_corpus(runner, tmp_path: Path) -> None:
    lines = (DATA_DIR / "customs" / "faq_M.jsonl").read_text(encoding="utf-8").splitlines()[:FAQ_SAMPLE]
    sample = tmp_path / "faq_sample.jsonl"
    sample.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = runner.invoke(args=["data", "load", str(sample)])
    assert result.exit_code == 0, result.output


def test_train_then_eval_keywords(app, runner, tmp_path):
    app.config.update(MODELS_DIR=tmp_path / "models", KOBART_MODEL=str(tmp_path / "models" / "kobart"),
                      MODEL_PROFILE="small")
    _load_sample_corpus(runner, tmp_path)
    result = runner.invoke(args=["train", "kobart", "--epochs", "1", "--pretrain-epochs", "1",
                                 "--max-steps-per-epoch", "2", "--batch-size", "4"])
    assert result.exit_code == 0, result.output
    assert "building the small BART starting checkpoint" in result.output
    assert (tmp_path / "models" / "kobart-small-base" / "extractor.json").exists()
    assert (tmp_path / "models" / "kobart" / "model.safetensors").exists()
    assert "extractor in" in result.output

    result = runner.invoke(args=["eval", "keywords", "--beams", "1"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.output.strip().splitlines()[-1])
    assert metrics["n"] == FAQ_SAMPLE
    assert 0.0 <= metrics["model_keyword_f1"] <= 1.0
    assert metrics["nouns_keyword_f1"] > 0.0 and metrics["noun_compounds_keyword_f1"] > 0.0


def test_train_without_documents_says_what_to_do(app, runner, tmp_path):
    app.config.update(MODELS_DIR=tmp_path / "models", KOBART_MODEL=str(tmp_path / "models" / "kobart"))
    result = runner.invoke(args=["train", "kobart"])
    assert result.exit_code != 0 and "flask data load" in result.output
