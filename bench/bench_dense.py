"""Dense retrieval benchmark: query encoding latency/throughput and FAISS flat vs IVF vs HNSW.

    .venv/bin/python bench/bench_dense.py [--model PATH] [--sizes 10000,100000,1000000] [--threads 1]

Encoding: median single-query latency (what one chat message costs) and batch throughput (what an
index build costs), with the e5 model at `--model` (default: config E5_BASE_MODEL).

Search: synthetic 384-d unit vectors drawn around cluster centres (real sentence embeddings are
clustered; uniform random vectors would make every approximate index look bad), queries are noisy
copies of stored vectors, and recall@10 is measured against exact flat search. Vectors are added in
chunks and each index is freed before the next is built, so 1M vectors peak near 4 GB.
"""
from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from pathlib import Path
from typing import Iterator

import faiss
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexer.store import StoreSettings, build_faiss_index  # noqa: E402

DIM = 384
N_CLUSTERS = 1000
CLUSTER_SPREAD = 0.6  # noise around each centre relative to the centre's unit norm
QUERY_NOISE = 0.3
N_QUERIES = 200
K = 10
CHUNK = 100_000
ENCODE_TRIALS = 30
THROUGHPUT_TEXTS = 128
# Build settings sized so the 1M case finishes in a couple of minutes on two cores; the store's own
# defaults (StoreSettings) trade build time for recall.
BENCH_SETTINGS = StoreSettings(approx_min_vectors=0, hnsw_m=16, hnsw_ef_construction=40, hnsw_ef_search=64,
                               ivf_lists_per_sqrt_n=1.0, ivf_nprobe=16, ivf_train_max=50_000, use_gpu=False)
SAMPLE_QUERIES = ["여행자 휴대품 면세한도는 얼마인가요?", "해외직구 물건이 세관에 묶였어요 어떻게 하나요",
                  "이사화물 통관 예약하면 뭐가 좋아요?", "관세 납부는 카드로도 되나요"]


def synthetic_vectors(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(12345).standard_normal((N_CLUSTERS, DIM)).astype(np.float32)
    faiss.normalize_L2(centres)
    x = centres[rng.integers(0, N_CLUSTERS, n)]
    x += rng.standard_normal((n, DIM), dtype=np.float32) * (CLUSTER_SPREAD / np.sqrt(DIM))
    faiss.normalize_L2(x)
    return x


def make_queries(base: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q = base[rng.integers(0, len(base), N_QUERIES)].copy()
    q += rng.standard_normal(q.shape, dtype=np.float32) * (QUERY_NOISE / np.sqrt(DIM))
    faiss.normalize_L2(q)
    return q


def time_search(index: faiss.Index, queries: np.ndarray) -> tuple[float, np.ndarray]:
    """Median single-query latency (ms) and the top-K rows of every query."""
    times, rows = [], []
    for q in queries:
        t = time.perf_counter()
        _, i = index.search(q[None, :], K)
        times.append((time.perf_counter() - t) * 1000)
        rows.append(i[0])
    return statistics.median(times), np.stack(rows)


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))


def bench_size(n: int) -> Iterator[dict]:
    """One row per index kind, yielded as soon as it is measured (the 1M HNSW build takes minutes)."""
    flat = faiss.IndexFlatIP(DIM)
    for start in range(0, n, CHUNK):
        flat.add(synthetic_vectors(min(CHUNK, n - start), seed=start))
    stored = faiss.rev_swig_ptr(flat.get_xb(), n * DIM).reshape(n, DIM)
    queries = make_queries(stored, seed=n)
    flat_ms, exact = time_search(flat, queries)
    yield {"n": n, "kind": "flat", "build_s": 0.0, "search_ms": flat_ms, "recall@10": 1.0}
    for kind in ("ivf", "hnsw"):
        settings = StoreSettings(**{**BENCH_SETTINGS.__dict__, "approx_kind": kind})
        t = time.perf_counter()
        index = build_faiss_index(stored, settings)
        build_s = time.perf_counter() - t
        if kind == "ivf":
            index.nprobe = settings.ivf_nprobe
        else:
            index.hnsw.efSearch = settings.hnsw_ef_search
        ms, found = time_search(index, queries)
        yield {"n": n, "kind": kind, "build_s": build_s, "search_ms": ms, "recall@10": recall_at_k(found, exact)}
        del index
        gc.collect()


def bench_encoding(model_path: str) -> dict:
    from indexer.dense import encode_one_query
    from indexer.encoder import TextClip

    model = TextClip.from_pretrained(model_path, query_only=True).eval()
    encode_one_query(model, SAMPLE_QUERIES[0])  # warm-up
    times = []
    for i in range(ENCODE_TRIALS):
        t = time.perf_counter()
        encode_one_query(model, SAMPLE_QUERIES[i % len(SAMPLE_QUERIES)])
        times.append((time.perf_counter() - t) * 1000)
    texts = [SAMPLE_QUERIES[i % len(SAMPLE_QUERIES)] for i in range(THROUGHPUT_TEXTS)]
    t = time.perf_counter()
    model.encode_queries(texts)
    return {"single_query_ms": statistics.median(times), "batch_texts_per_s": THROUGHPUT_TEXTS / (time.perf_counter() - t)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help="encoder directory (default: config E5_BASE_MODEL)")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--threads", type=int, default=1, help="torch and FAISS threads")
    parser.add_argument("--skip-encoding", action="store_true")
    args = parser.parse_args()

    import torch

    from config import Config

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    if not args.skip_encoding:
        enc = bench_encoding(args.model or Config.E5_BASE_MODEL)
        print(f"query encoding ({args.threads} thread(s)): median {enc['single_query_ms']:.1f} ms per query, "
              f"{enc['batch_texts_per_s']:.0f} texts/s in batches")
    print(f"{'vectors':>9}  {'index':5}  {'build s':>8}  {'search ms':>9}  {'recall@10':>9}")
    for n in (int(s) for s in args.sizes.split(",")):
        for row in bench_size(n):
            print(f"{row['n']:>9}  {row['kind']:5}  {row['build_s']:8.1f}  {row['search_ms']:9.2f}  "
                  f"{row['recall@10']:9.3f}", flush=True)


if __name__ == "__main__":
    main()
