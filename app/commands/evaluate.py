"""`flask eval retrieval` and `flask eval followups`: retrieval quality, abstention and context use.

`--mode hybrid` runs exactly what `/api/v1/chat` runs (same retriever, same routing policy, minus
the small-talk generation). Without `--queries`, the evaluation set is the held-out paraphrases
(one per FAQ), and the index is rebuilt in a temporary directory from the training split so that no
signal has seen them. With `--queries FILE` the current published index answers. With
`--without-messages` a temporary index is built without the labelled user messages (the bundled FAQ
alone, as the README's BM25 baseline is defined). The last line printed is one JSON object of metrics.
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import replace
from pathlib import Path

import click
from flask import current_app
from tqdm.auto import tqdm

from app.commands.groups import eval_cli
from app.corpus import faq_records, synonym_groups
from app.services.chat import RoutingSettings, decide, retrieve_in_context
from app.services.fusion import SIGNALS
from app.services.pipeline import HybridRetriever, RetrievalIndex
from app.services.retrieval import keyword_function, retrieval_settings
from indexer.metrics import evaluate_ranking
from indexer.versions import current_version, version_path
from trainers.data import FaqRecord, Query, heldout_split, read_jsonl, read_queries

MODES = {"hybrid": SIGNALS, **{signal: (signal,) for signal in SIGNALS}}
SWEEP = [round(0.05 * i, 2) for i in range(1, 20)]


def _temporary_index(tmp: Path, records: list[FaqRecord], calibrate: bool) -> RetrievalIndex:
    """An index version built from `records` alone in `tmp` (never published)."""
    from app.commands.index import build_version

    build_version(tmp, records=records, calibrate=calibrate)
    return RetrievalIndex.load(tmp, current_app.config["TORCH_THREADS"])


def _current_index() -> RetrievalIndex:
    root = Path(current_app.config["INDEX_DIR"])
    version = current_version(root)
    if version is None:
        raise click.ClickException("no index is current; run `flask index build` first")
    return RetrievalIndex.load(version_path(root, version), current_app.config["TORCH_THREADS"])


def abstention_metrics(gold: list[str | None], answered: list[str | None]) -> dict:
    """answered[i] is the doc_id the service answered with, or None when it fell back."""
    abstained = [a is None for a in answered]
    ood = [g is None for g in gold]
    true_abstain = sum(a and o for a, o in zip(abstained, ood))
    right = sum((a is None and g is None) or (a is not None and a == g) for a, g in zip(answered, gold))
    return {
        "abstain_precision": true_abstain / sum(abstained) if any(abstained) else None,
        "abstain_recall": true_abstain / sum(ood) if any(ood) else None,
        "answered_correct": right / len(gold) if gold else 0.0,
        "answered_wrong": sum(a is not None and a != g for a, g in zip(answered, gold)) / len(gold) if gold else 0.0,
    }


def run_queries(retriever: HybridRetriever, queries: list[Query]) -> tuple[list[list[str]], list[float]]:
    ranked, confidences = [], []
    for q in tqdm(queries, desc="evaluating", unit="msg"):
        retrieval = retriever.retrieve(q.text)
        ranked.append([c.doc_id for c in retrieval.candidates])
        confidences.append(retrieval.confidence)
    return ranked, confidences


def _answered(ranked: list[list[str]], confidences: list[float], settings: RoutingSettings) -> list[str | None]:
    return [r[0] if r and decide(c, settings) != "fallback" else None for r, c in zip(ranked, confidences)]


def _print_sweep(gold, ranked, confidences, settings: RoutingSettings) -> None:
    click.echo("threshold  answered_correct  answered_wrong  abstain_precision  abstain_recall")
    for t in SWEEP:
        m = abstention_metrics(gold, _answered(ranked, confidences, replace(settings, suggest_threshold=t)))
        fmt = lambda v: f"{v:.3f}" if v is not None else "  -  "  # noqa: E731
        click.echo(f"{t:9.2f}  {fmt(m['answered_correct']):>16}  {fmt(m['answered_wrong']):>14}  "
                   f"{fmt(m['abstain_precision']):>17}  {fmt(m['abstain_recall']):>14}")


@eval_cli.command("retrieval")
@click.option("--mode", type=click.Choice(list(MODES)), default="hybrid", show_default=True)
@click.option("--queries", "queries_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON Lines {query, doc_id|null}; default: held-out paraphrases.")
@click.option("--fusion", type=click.Choice(["learned", "rrf"]), help="Override FUSION_METHOD.")
@click.option("--no-synonyms", is_flag=True, help="Graph without synonym edges.")
@click.option("--sweep", is_flag=True, help="Print abstention figures over a range of thresholds.")
@click.option("--without-messages", is_flag=True,
              help="Build a temporary index without the labelled user messages (the bundled FAQ alone).")
def retrieval_command(mode: str, queries_file: Path | None, fusion: str | None, no_synonyms: bool, sweep: bool,
                      without_messages: bool) -> None:
    """Top-1/5/10, MRR@10 and abstention of one retrieval mode."""
    config = current_app.config
    with tempfile.TemporaryDirectory(prefix="eval-index-") as tmp:
        if queries_file:
            records, queries = faq_records(), read_queries(queries_file)
        else:
            records, queries = heldout_split(faq_records())
        if without_messages:
            records = [replace(r, labelled_messages=()) for r in records]
        if queries_file and not without_messages:
            index = _current_index()
        else:
            index = _temporary_index(Path(tmp), records, calibrate=mode == "hybrid")
        if no_synonyms:
            from kg.graph import KnowledgeGraph

            index.graph = KnowledgeGraph.build(records, synonym_groups(), use_synonyms=False)
        settings = replace(retrieval_settings(config), signals=MODES[mode], fusion=fusion or config["FUSION_METHOD"])
        retriever = HybridRetriever(index, keyword_function(), settings)
        ranked, confidences = run_queries(retriever, queries)
    gold = [q.doc_id for q in queries]
    metrics = evaluate_ranking(ranked, gold)
    routing = RoutingSettings.from_config(config)
    if mode == "hybrid":
        metrics.update(abstention_metrics(gold, _answered(ranked, confidences, routing)))
        if sweep:
            _print_sweep(gold, ranked, confidences, routing)
    else:
        metrics.update({"abstain_precision": None, "abstain_recall": None,
                        "answered_correct": sum(bool(r) and r[0] == g for r, g in zip(ranked, gold)) / len(gold)})
    metrics.update({"mode": mode, "fusion": settings.fusion if mode == "hybrid" else None,
                    "queries": str(queries_file or "held-out paraphrases"), "n": len(queries)})
    click.echo(json.dumps(metrics, ensure_ascii=False))


@eval_cli.command("followups")
@click.option("--file", "followups_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON Lines {turns: [first, follow-up], doc_ids: [...]}; default data/tune/followups.jsonl.")
def followups_command(followups_file: Path | None) -> None:
    """Second-turn accuracy with and without the session's previous message."""
    config = current_app.config
    path = followups_file or Path(config["DATA_DIR"]) / "tune" / "followups.jsonl"
    conversations = list(read_jsonl(path))
    retriever = HybridRetriever(_current_index(), keyword_function(), retrieval_settings(config))
    routing = RoutingSettings.from_config(config)
    no_context, with_context, used = [], [], 0
    for conv in tqdm(conversations, desc="follow-ups", unit="conv"):
        first, second = conv["turns"]
        gold = conv["doc_ids"][1]
        for previous, out in ((None, no_context), (first, with_context)):
            retrieval, _, used_context = retrieve_in_context(retriever, second, previous, routing)
            top = retrieval.top.doc_id if retrieval.top and decide(retrieval.confidence, routing) != "fallback" else None
            out.append(top == gold)
            used += bool(previous and used_context)
    n = len(conversations)
    click.echo(json.dumps({"without_context": sum(no_context) / n, "with_context": sum(with_context) / n,
                           "context_used": used / n, "n": n}))
