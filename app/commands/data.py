"""`flask data load`: the FAQ corpus, synonym groups and labelled messages from JSON Lines into the database.

Idempotent (upsert by `doc_id`; synonym groups by their sorted terms) and all-or-nothing: every file
is parsed and validated before anything is written, and the writes share one transaction. A bad line
is reported as `file:line: reason` and the database is left as it was. Labelled messages (a user's
message and the FAQ that answers it) are added, never removed: a message already stored is unchanged.

`flask data harvest-feedback` closes the loop with real traffic: chat messages that users marked
helpful become labelled messages of the FAQ that answered them, for the next index build and training.
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import click
from flask import current_app
from jsonschema import Draft202012Validator
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from app.commands.groups import data_cli
from app.extensions import db
from app.models import ChatMessage, Document, Feedback, LabelledMessage, Paraphrase, SynonymGroup
from app.services.pipeline import normalise_message

DOC_ID_PATTERN = r"^[A-Z]+-\d+$"
_STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}}
FAQ_SCHEMA = {
    "type": "object",
    "required": ["id", "category", "question", "answer"],
    "properties": {
        "id": {"type": "string", "pattern": DOC_ID_PATTERN, "maxLength": 32},
        "category": {"type": "string", "minLength": 1, "maxLength": 64},
        "question": {"type": "string", "minLength": 1},
        "answer": {"type": "string", "minLength": 1},
        "keywords": _STRINGS,
        "paraphrases": {
            "type": "array",
            "items": {"type": "object", "required": ["text"],
                      "properties": {"text": {"type": "string", "minLength": 1}, "keywords": _STRINGS}},
        },
    },
}
SYNONYM_SCHEMA = {"type": "object", "required": ["terms"], "properties": {"terms": {**_STRINGS, "minItems": 2}}}
MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["query", "doc_id"],
    "properties": {
        "query": {"type": "string", "minLength": 1, "maxLength": 1000, "pattern": r"\S"},
        "doc_id": {"type": "string", "pattern": DOC_ID_PATTERN, "maxLength": 32},
    },
}


class CorpusError(click.ClickException):
    """A malformed input line: the message names the file and line."""


@dataclass(frozen=True)
class MessageLine:
    """One labelled message and where it came from (its file names the source; its line, errors)."""

    doc_id: str
    text: str
    source: str
    where: str


@dataclass
class Corpus:
    faqs: dict[str, dict] = field(default_factory=dict)
    synonyms: dict[str, tuple[str, list[str]]] = field(default_factory=dict)  # key -> (partition, terms)
    messages: dict[tuple[str, str], MessageLine] = field(default_factory=dict)  # (doc_id, text) -> line


def _partition(path: Path) -> str:
    """`synonyms_T.jsonl` -> `T` (the corpus partition the file belongs to)."""
    return path.stem.rsplit("_", 1)[-1]


def _parse_lines(path: Path, schema: dict):
    validator = Draft202012Validator(schema)
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise CorpusError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
            error = next(iter(validator.iter_errors(obj)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "line"
                raise CorpusError(f"{path}:{lineno}: {where}: {error.message}")
            yield lineno, obj


def read_corpus(paths: list[Path]) -> Corpus:
    """Parse and validate every file; raises CorpusError naming file:line on the first bad line."""
    corpus = Corpus()
    for path in paths:
        if path.name.startswith("faq_"):
            for lineno, obj in _parse_lines(path, FAQ_SCHEMA):
                if obj["id"] in corpus.faqs:
                    raise CorpusError(f"{path}:{lineno}: duplicate id {obj['id']}")
                corpus.faqs[obj["id"]] = obj
        elif path.name.startswith("synonyms_"):
            for _, obj in _parse_lines(path, SYNONYM_SCHEMA):
                terms = list(dict.fromkeys(t.strip() for t in obj["terms"]))
                corpus.synonyms["|".join(sorted(terms))] = (_partition(path), terms)
        elif path.name.startswith("labelled_"):
            for lineno, obj in _parse_lines(path, MESSAGE_SCHEMA):
                text = normalise_message(obj["query"])  # as the chat pipeline reads a message
                line = MessageLine(obj["doc_id"], text, path.stem, f"{path}:{lineno}")
                corpus.messages.setdefault((line.doc_id, text), line)
        else:
            raise CorpusError(f"{path}: unknown file kind (expected faq_*, synonyms_* or labelled_*.jsonl)")
    return corpus


def _paraphrase_rows(obj: dict) -> list[tuple[str, list[str]]]:
    return [(p["text"], list(p.get("keywords", []))) for p in obj.get("paraphrases", [])]


def _upsert_document(existing: Document | None, obj: dict) -> tuple[str, Document]:
    """Insert or update one FAQ; returns ('inserted' | 'updated' | 'unchanged', the document)."""
    fields = {"category": obj["category"], "question": obj["question"], "answer": obj["answer"],
              "keywords": list(obj.get("keywords", []))}
    paraphrases = _paraphrase_rows(obj)
    if existing is None:
        doc = Document(doc_id=obj["id"], **fields)
        doc.paraphrases = [Paraphrase(position=i, text=t, keywords=k) for i, (t, k) in enumerate(paraphrases)]
        db.session.add(doc)
        return "inserted", doc
    current = [(p.text, list(p.keywords)) for p in existing.paraphrases]
    if all(getattr(existing, k) == v for k, v in fields.items()) and current == paraphrases:
        return "unchanged", existing
    for key, value in fields.items():
        setattr(existing, key, value)
    if current != paraphrases:
        existing.paraphrases.clear()
        db.session.flush()
        existing.paraphrases.extend(
            Paraphrase(position=i, text=t, keywords=k) for i, (t, k) in enumerate(paraphrases))
    return "updated", existing


def _add_message(documents: dict[str, Document], line: MessageLine) -> str:
    """Attach one labelled message to its FAQ; returns 'inserted' | 'unchanged'."""
    doc = documents.get(line.doc_id)
    if doc is None:
        raise CorpusError(f"{line.where}: unknown doc_id {line.doc_id} (load its FAQ first or in the same run)")
    if any(m.text == line.text for m in doc.labelled_messages):
        return "unchanged"
    doc.labelled_messages.append(LabelledMessage(text=line.text, source=line.source))
    return "inserted"


def _documents_with_messages() -> dict[str, Document]:
    return {d.doc_id: d for d in db.session.scalars(
        select(Document).options(selectinload(Document.paraphrases), selectinload(Document.labelled_messages)))}


def load_corpus(corpus: Corpus) -> dict[str, Counter]:
    """Upsert the parsed corpus in one transaction; returns counts per kind and outcome."""
    counts = {"documents": Counter(), "synonym_groups": Counter(), "labelled_messages": Counter()}
    existing = _documents_with_messages()
    known_groups = {g.key: g for g in db.session.scalars(select(SynonymGroup))}
    try:
        for doc_id, obj in corpus.faqs.items():
            outcome, existing[doc_id] = _upsert_document(existing.get(doc_id), obj)
            counts["documents"][outcome] += 1
        for line in corpus.messages.values():
            counts["labelled_messages"][_add_message(existing, line)] += 1
        for key, (partition, terms) in corpus.synonyms.items():
            if key in known_groups:
                counts["synonym_groups"]["unchanged"] += 1
            else:
                db.session.add(SynonymGroup(key=key, partition=partition, terms=terms))
                counts["synonym_groups"]["inserted"] += 1
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    return counts


def default_corpus_paths() -> list[Path]:
    data = Path(current_app.config["DATA_DIR"])
    return (sorted((data / "customs").glob("faq_*.jsonl")) + sorted((data / "customs").glob("synonyms_*.jsonl"))
            + sorted((data / "messages").glob("labelled_*.jsonl")))


@data_cli.command("load")
@click.argument("paths", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
def load_command(paths: tuple[Path, ...]) -> None:
    """Load FAQ (faq_*.jsonl), synonym (synonyms_*.jsonl) and labelled message (labelled_*.jsonl)
    files; default: the bundled corpus and messages."""
    files = list(paths) or default_corpus_paths()
    if not files:
        raise click.ClickException("no corpus files found; pass PATH... or put them under DATA_DIR/customs")
    corpus = read_corpus(files)
    counts = load_corpus(corpus)
    for kind, c in counts.items():
        click.echo(f"{kind}: {c['inserted']} inserted, {c['updated']} updated, {c['unchanged']} unchanged")
    click.echo(f"loaded {len(files)} files into {db.engine.url.render_as_string(hide_password=True)}")


FEEDBACK_SOURCE = "feedback"


def _rated(helpful: bool):
    """The ids of chat messages with at least one feedback row of this verdict (a subquery)."""
    return select(Feedback.message_pk).where(Feedback.helpful.is_(helpful))


def helpful_messages() -> list[ChatMessage]:
    """Chat messages answered from a FAQ that users marked helpful, and nobody marked unhelpful.

    Follow-ups answered with the previous turn's context are left out: their text alone ("그럼 술은요?")
    does not say what they ask.
    """
    messages = db.session.scalars(
        select(ChatMessage)
        .where(ChatMessage.id.in_(_rated(True)), ChatMessage.id.not_in(_rated(False)),
               ChatMessage.route == "retrieval", ChatMessage.doc_id.is_not(None))
        .order_by(ChatMessage.id))
    return [m for m in messages if m.resolved_text == normalise_message(m.user_text)]


@data_cli.command("harvest-feedback")
@click.option("--dry-run", is_flag=True, help="List what would be added; write nothing.")
def harvest_feedback_command(dry_run: bool) -> None:
    """Add chat messages users marked helpful as labelled messages of the FAQ that answered them."""
    documents = _documents_with_messages()
    counts: Counter = Counter()
    try:
        for message in helpful_messages():
            if message.doc_id not in documents:
                counts["FAQ no longer loaded"] += 1
                continue
            line = MessageLine(message.doc_id, normalise_message(message.user_text), FEEDBACK_SOURCE,
                               f"chat message {message.message_id}")
            outcome = _add_message(documents, line)
            if outcome == "inserted":
                click.echo(f"{line.doc_id}  {line.text}")
            counts[outcome] += 1
        if dry_run:
            db.session.rollback()
        else:
            db.session.commit()
    except Exception:
        db.session.rollback()
        raise
    verb = "would add" if dry_run else "added"
    next_step = "; `flask index build` puts them to use" if counts["inserted"] and not dry_run else ""
    click.echo(f"{verb} {counts['inserted']} labelled messages from helpful feedback ({counts['unchanged']} "
               f"already known, {counts['FAQ no longer loaded']} for FAQs no longer loaded){next_step}")
