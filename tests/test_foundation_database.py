"""Migrations and `flask data load` on SQLite and PostgreSQL: idempotent, all-or-nothing."""
from __future__ import annotations

import json
import shutil

import pytest
import sqlalchemy as sa

from app import create_app
from app.extensions import db
from app.models import Document, LabelledMessage, Paraphrase

from tests.conftest import DATA_DIR


@pytest.fixture
def migrated_app(database_url):
    app = create_app({"SQLALCHEMY_DATABASE_URI": database_url, "DATA_DIR": DATA_DIR})
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def _count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _load(app, *paths):
    return app.test_cli_runner().invoke(args=["data", "load", *map(str, paths)])


def test_load_bundled_corpus_then_reload_changes_nothing(migrated_app):
    first = _load(migrated_app)
    assert first.exit_code == 0, first.output
    assert "documents: 300 inserted, 0 updated, 0 unchanged" in first.output
    assert _count(migrated_app, Document) == 300
    paraphrases = _count(migrated_app, Paraphrase)
    assert paraphrases >= 600

    second = _load(migrated_app)
    assert second.exit_code == 0, second.output
    assert "documents: 0 inserted, 0 updated, 300 unchanged" in second.output
    assert "synonym_groups: 0 inserted" in second.output
    assert _count(migrated_app, Paraphrase) == paraphrases


def test_labelled_messages_load_once_and_belong_to_their_faq(migrated_app):
    first = _load(migrated_app)
    bundled = sum(1 for path in (DATA_DIR / "messages").glob("labelled_*.jsonl")
                  for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    assert f"labelled_messages: {bundled} inserted" in first.output
    assert _count(migrated_app, LabelledMessage) == bundled > 1000
    second = _load(migrated_app)
    assert f"labelled_messages: 0 inserted, 0 updated, {bundled} unchanged" in second.output
    with migrated_app.app_context():
        doc = db.session.scalar(sa.select(Document).where(Document.doc_id == "T-001"))
        assert doc.labelled_messages and all(m.source == "labelled_T" for m in doc.labelled_messages)


def test_labelled_message_for_an_unknown_faq_is_rejected_and_nothing_written(migrated_app, tmp_path):
    _load(migrated_app)
    before = _count(migrated_app, LabelledMessage)
    extra = tmp_path / "labelled_extra.jsonl"
    extra.write_text("\n".join([json.dumps({"query": "새 메시지 하나", "doc_id": "T-001"}, ensure_ascii=False),
                                json.dumps({"query": "없는 FAQ", "doc_id": "T-999"}, ensure_ascii=False)]),
                     encoding="utf-8")
    result = _load(migrated_app, extra)
    assert result.exit_code != 0
    assert f"{extra}:2: unknown doc_id T-999" in result.output
    assert _count(migrated_app, LabelledMessage) == before


def test_changed_answer_is_updated_in_place(migrated_app, tmp_path):
    _load(migrated_app)
    src = DATA_DIR / "customs" / "faq_T.jsonl"
    rows = [json.loads(line) for line in src.read_text(encoding="utf-8").splitlines()]
    rows[0]["answer"] += " (개정)"
    rows[0]["paraphrases"] = rows[0]["paraphrases"][:1]
    changed = tmp_path / "faq_T.jsonl"
    changed.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")

    result = _load(migrated_app, changed)
    assert result.exit_code == 0, result.output
    assert "documents: 0 inserted, 1 updated, 59 unchanged" in result.output
    with migrated_app.app_context():
        doc = db.session.scalar(sa.select(Document).where(Document.doc_id == rows[0]["id"]))
        assert doc.answer.endswith("(개정)")
        assert [p.text for p in doc.paraphrases] == [rows[0]["paraphrases"][0]["text"]]


@pytest.mark.parametrize("bad_line, reason", [
    ("{not json", "invalid JSON"),
    ('{"id": "T-999", "category": "x", "question": "q?"}', "'answer' is a required property"),
    ('{"id": "T-998", "category": "x", "question": "q?", "answer": 5}', "answer"),
])
def test_corrupted_file_is_rejected_with_file_and_line_and_nothing_written(migrated_app, tmp_path, bad_line, reason):
    _load(migrated_app)
    with migrated_app.app_context():
        before = db.session.scalar(sa.select(Document.answer).where(Document.doc_id == "D-001"))
    good = DATA_DIR / "customs" / "faq_D.jsonl"
    lines = good.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["answer"] = "바뀐 답변"
    corrupted = tmp_path / "faq_D.jsonl"
    corrupted.write_text("\n".join([json.dumps(first, ensure_ascii=False), *lines[1:5], bad_line]), encoding="utf-8")

    result = _load(migrated_app, corrupted)
    assert result.exit_code != 0
    assert f"{corrupted}:6" in result.output and reason in result.output
    assert _count(migrated_app, Document) == 300
    with migrated_app.app_context():
        assert db.session.scalar(sa.select(Document.answer).where(Document.doc_id == "D-001")) == before


def test_downgrade_removes_the_schema_and_upgrade_restores_it(migrated_app):
    runner = migrated_app.test_cli_runner()
    assert runner.invoke(args=["db", "downgrade", "base"]).exit_code == 0
    with migrated_app.app_context():
        assert "documents" not in sa.inspect(db.engine).get_table_names()
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    with migrated_app.app_context():
        assert {"documents", "chat_messages", "feedback", "index_builds"} <= set(sa.inspect(db.engine).get_table_names())


def test_unknown_file_kind_is_an_error(migrated_app, tmp_path):
    odd = tmp_path / "notes.jsonl"
    shutil.copy(DATA_DIR / "customs" / "faq_T.jsonl", odd)
    result = _load(migrated_app, odd)
    assert result.exit_code != 0 and "unknown file kind" in result.output
