"""`flask index build` / `flask index status`: versioned retrieval indexes, built aside and then swapped in.

A build reads the FAQ documents from the database and the trained encoder from its checkpoint,
writes a new version directory (documents snapshot, FAISS vectors, BM25, character n-grams,
knowledge graph, fitted calibrator), records an `index_builds` row (building -> ready | failed) and
only then moves the `current` pointer. Running workers pick the new version up without a restart.
A build that fails or is interrupted leaves the previous version current and its own directory
removed.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import click
from flask import current_app
from sqlalchemy import select

from app.commands.groups import index_cli
from app.corpus import faq_records, synonym_groups
from app.extensions import db
from app.models import IndexBuild, utcnow
from app.services.calibration import calibration_queries, fit_calibrator
from app.services.pipeline import (BM25_DIR, CHARS_DIR, DENSE_DIR, GRAPH_DIR, HybridRetriever, RetrievalIndex,
                                   write_documents)
from app.services.retrieval import keyword_function, retrieval_settings
from indexer.versions import current_version, new_version, prune, publish
from trainers.data import FaqRecord

KEEP_VERSIONS = 3


def build_version(path: Path, records: list[FaqRecord] | None = None, echo=click.echo, calibrate: bool = True) -> dict:
    """Write every artifact of one index version into `path` (default: every FAQ in the database).

    `calibrate=False` leaves the fusion calibrator out: enough for single-signal evaluations.
    """
    from indexer.dense import write_dense_index
    from indexer.store import StoreSettings
    from kg.bm25 import Bm25Index
    from kg.chargrams import CharNgramIndex
    from kg.graph import KnowledgeGraph

    config = current_app.config
    records = faq_records() if records is None else records
    if not records:
        raise click.ClickException("the database holds no FAQ documents; run `flask data load` first")
    counts: dict = {"documents": write_documents(records, path)}
    echo(f"encoding {len(records)} documents with {config['CLIP_MODEL']} (and the base model for abstention)")
    counts.update(write_dense_index(records, config["CLIP_MODEL"], config["E5_BASE_MODEL"], path / DENSE_DIR,
                                    store_settings=StoreSettings.from_config(config)))
    Bm25Index.build(records).save(path / BM25_DIR)
    CharNgramIndex.build(records).save(path / CHARS_DIR)
    graph = KnowledgeGraph.build(records, synonym_groups())
    graph.save(path / GRAPH_DIR)
    counts["graph"] = graph.stats()
    echo(f"knowledge graph: {counts['graph']}")
    if not calibrate:
        return counts

    index = RetrievalIndex.load(path, config["TORCH_THREADS"])
    queries = calibration_queries(Path(config["TUNE_QUERIES"]), Path(config["DATA_DIR"]) / "chitchat" / "chitchat.jsonl")
    calibrator, calibration = fit_calibrator(HybridRetriever(index, keyword_function(), retrieval_settings(config)), queries)
    calibrator.save(path)
    counts["calibration"] = calibration
    return counts


@index_cli.command("build")
def build_command() -> None:
    """Build a new index version from the database and make it current."""
    root = Path(current_app.config["INDEX_DIR"])
    root.mkdir(parents=True, exist_ok=True)
    version, path = new_version(root)
    row = IndexBuild(version=version, status="building", path=str(path))
    db.session.add(row)
    db.session.commit()
    started = time.perf_counter()
    click.echo(f"building index version {version} in {path}")
    try:
        counts = build_version(path)
    except BaseException as exc:  # KeyboardInterrupt too: the previous version must stay current
        shutil.rmtree(path, ignore_errors=True)
        row.status, row.error, row.finished_at = "failed", f"{type(exc).__name__}: {exc}", utcnow()
        row.seconds = time.perf_counter() - started
        db.session.commit()
        previous = current_version(root)
        click.echo(f"build {version} failed; still serving {previous or 'nothing'}", err=True)
        raise
    publish(root, version)
    row.status, row.finished_at, row.seconds = "ready", utcnow(), time.perf_counter() - started
    row.documents = counts["documents"]
    row.vectors = int(counts.get("vectors", 0))
    row.graph_nodes, row.graph_edges = counts["graph"].get("nodes", 0), counts["graph"].get("edges", 0)
    db.session.commit()
    removed = prune(root, keep=KEEP_VERSIONS)
    click.echo(f"index {version} is current: {row.documents} documents, {row.vectors} vectors, "
               f"graph {row.graph_nodes} nodes / {row.graph_edges} edges, calibrated on "
               f"{counts['calibration']['messages']} messages, {row.seconds:.1f} s -> {path}"
               + (f" (pruned {len(removed)} old versions)" if removed else ""))


@index_cli.command("status")
def status_command() -> None:
    """Show the current version and the last builds."""
    root = Path(current_app.config["INDEX_DIR"])
    click.echo(f"current: {current_version(root) or 'none'} under {root}")
    for row in db.session.scalars(select(IndexBuild).order_by(IndexBuild.id.desc()).limit(10)):
        click.echo(f"{row.version}  {row.status:8}  {row.documents:4} docs  {row.seconds:7.1f} s  {row.error or ''}")
